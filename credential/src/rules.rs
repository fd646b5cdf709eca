//! The validation rules of `#[credential(validate(...))]`.
//!
//! Each rule reaches the value through a small trait, so a rule that does not fit a field's type
//! is a compile error at the rule, and rules on secret fields read the secret in place without
//! formatting or copying it. An `Option` field passes every rule when it is `None`.

use std::collections::BTreeMap;
use std::fmt::Display;

#[cfg(feature = "pattern")]
use regex::Regex;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::ValidationErrors;
pub use crate::validation::{RuleError, ValidationError};

/// A value with a length, for the `length` and `non_empty` rules.
#[diagnostic::on_unimplemented(
    message = "the `length` and `non_empty` rules do not apply to `{Self}`",
    label = "this field has no length",
    note = "they apply to text, secrets, lists and maps (and `Option` of those)"
)]
pub trait LengthRule {
    /// What the length counts, for messages ("characters", "bytes", "items").
    const UNIT: &'static str;

    /// The length, or `None` when an optional value is absent.
    fn rule_length(&self) -> Option<usize>;
}

/// A value readable as text, for the `url` and `pattern` rules.
#[diagnostic::on_unimplemented(
    message = "the `url` and `pattern` rules do not apply to `{Self}`",
    label = "this field is not text",
    note = "they apply to `String`, `SecretString` and `Option` of those"
)]
pub trait TextRule {
    /// Whether the text is a secret: rules then read it without handing it to code that could
    /// copy it into memory freed unwiped.
    const SECRET: bool = false;

    /// The text, or `None` when an optional value is absent.
    fn rule_text(&self) -> Option<&str>;
}

/// A value with an order, for the `range` rule.
#[diagnostic::on_unimplemented(
    message = "the `range` rule does not apply to `{Self}`",
    label = "this field is not a number",
    note = "`range` applies to integers, `f64` and `Option` of those"
)]
pub trait RangeRule {
    /// The type the bounds are written in.
    type Bound: PartialOrd + Display;

    /// The value, or `None` when an optional value is absent.
    fn rule_value(&self) -> Option<&Self::Bound>;
}

impl LengthRule for String {
    const UNIT: &'static str = "characters";

    fn rule_length(&self) -> Option<usize> {
        Some(self.chars().count())
    }
}

impl LengthRule for SecretString {
    const UNIT: &'static str = "characters";

    fn rule_length(&self) -> Option<usize> {
        Some(self.expose_secret().chars().count())
    }
}

impl LengthRule for SecretSlice<u8> {
    const UNIT: &'static str = "bytes";

    fn rule_length(&self) -> Option<usize> {
        Some(self.expose_secret().len())
    }
}

impl<T> LengthRule for Vec<T> {
    const UNIT: &'static str = "items";

    fn rule_length(&self) -> Option<usize> {
        Some(self.len())
    }
}

impl<T> LengthRule for BTreeMap<String, T> {
    const UNIT: &'static str = "entries";

    fn rule_length(&self) -> Option<usize> {
        Some(self.len())
    }
}

impl<T: LengthRule> LengthRule for Option<T> {
    const UNIT: &'static str = T::UNIT;

    fn rule_length(&self) -> Option<usize> {
        self.as_ref().and_then(LengthRule::rule_length)
    }
}

impl TextRule for String {
    fn rule_text(&self) -> Option<&str> {
        Some(self)
    }
}

impl TextRule for SecretString {
    const SECRET: bool = true;

    fn rule_text(&self) -> Option<&str> {
        Some(self.expose_secret())
    }
}

impl<T: TextRule> TextRule for Option<T> {
    const SECRET: bool = T::SECRET;

    fn rule_text(&self) -> Option<&str> {
        self.as_ref().and_then(TextRule::rule_text)
    }
}

macro_rules! range_rule {
    ($($ty:ty),*) => {$(
        impl RangeRule for $ty {
            type Bound = $ty;

            fn rule_value(&self) -> Option<&$ty> {
                Some(self)
            }
        }
    )*};
}

range_rule!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f64);

impl<T: RangeRule> RangeRule for Option<T> {
    type Bound = T::Bound;

    fn rule_value(&self) -> Option<&T::Bound> {
        self.as_ref().and_then(RangeRule::rule_value)
    }
}

/// `non_empty`: the value has at least one character, byte or item.
pub fn non_empty<T: LengthRule>(errors: &mut ValidationErrors, field: &'static str, value: &T) {
    if value.rule_length() == Some(0) {
        errors.add(field, "non_empty", "must not be empty");
    }
}

/// `length(min = .., max = ..)`: the length lies within the bounds.
pub fn length<T: LengthRule>(
    errors: &mut ValidationErrors,
    field: &'static str,
    value: &T,
    min: Option<usize>,
    max: Option<usize>,
) {
    let Some(length) = value.rule_length() else {
        return;
    };
    let unit = T::UNIT;
    match (min, max) {
        (Some(min), Some(max)) if length < min || length > max => {
            errors.add(field, "length", format!("must be {min} to {max} {unit} long"));
        }
        (Some(min), None) if length < min => {
            errors.add(field, "length", format!("must be at least {min} {unit} long"));
        }
        (None, Some(max)) if length > max => {
            errors.add(field, "length", format!("must be at most {max} {unit} long"));
        }
        _ => {}
    }
}

/// `range(min = .., max = ..)`: the value lies within the bounds (inclusive).
pub fn range<T: RangeRule<Bound = B>, B: PartialOrd + Display>(
    errors: &mut ValidationErrors,
    field: &'static str,
    value: &T,
    min: Option<B>,
    max: Option<B>,
) {
    let Some(value) = value.rule_value() else {
        return;
    };
    let below = min.as_ref().is_some_and(|min| value < min);
    let above = max.as_ref().is_some_and(|max| value > max);
    if !(below || above) {
        return;
    }
    let message = match (min, max) {
        (Some(min), Some(max)) => format!("must be between {min} and {max}"),
        (Some(min), None) => format!("must be at least {min}"),
        (None, Some(max)) => format!("must be at most {max}"),
        (None, None) => return,
    };
    errors.add(field, "range", message);
}

/// `url`: the text parses as an absolute URL.
#[cfg(feature = "url")]
pub fn url<T: TextRule>(errors: &mut ValidationErrors, field: &'static str, value: &T) {
    let Some(text) = value.rule_text() else {
        return;
    };
    // A secret is checked in place: the URL parser keeps copies of its input in buffers it frees
    // without wiping, on its error path too.
    let absolute = if T::SECRET { is_absolute_url(text) } else { url::Url::parse(text).is_ok() };
    if !absolute {
        errors.add(field, "url", "must be an absolute URL");
    }
}

#[cfg(feature = "url")]
/// Whether `text` has the shape of an absolute URL (RFC 3986): a scheme, `:`, and something
/// after it; no whitespace or control characters; and a non-empty host after `//` for the
/// schemes that need one. Reads the text in place; allocates nothing.
fn is_absolute_url(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.bytes();
    let scheme_ok = scheme_chars.next().is_some_and(|first| first.is_ascii_alphabetic())
        && scheme_chars
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.'));
    if !scheme_ok || rest.is_empty() || text.bytes().any(|byte| byte <= b' ' || byte == 0x7f) {
        return false;
    }
    let needs_host = ["http", "https", "ws", "wss", "ftp"]
        .iter()
        .any(|special| scheme.eq_ignore_ascii_case(special));
    if !needs_host {
        return true;
    }
    let Some(after_slashes) = rest.strip_prefix("//") else {
        return false;
    };
    let authority = after_slashes.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let digits = |port: &str| port.bytes().all(|byte| byte.is_ascii_digit());
    let host = match host_and_port.strip_prefix('[') {
        // An IPv6 literal, then an optional port.
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, "")) => address,
            Some((address, after)) if after.strip_prefix(':').is_some_and(digits) => address,
            _ => return false,
        },
        None => match host_and_port.split_once(':') {
            Some((host, port)) if digits(port) => host,
            Some(_) => return false,
            None => host_and_port,
        },
    };
    !host.is_empty()
}

#[cfg(feature = "pattern")]
/// `pattern = "..."`: the text matches the regular expression. `regex` is `None` only when the
/// pattern, checked at compile time, still fails to build (for example over the size limit).
pub fn pattern<T: TextRule>(
    errors: &mut ValidationErrors,
    field: &'static str,
    value: &T,
    regex: Option<&Regex>,
    source: &'static str,
) {
    let Some(text) = value.rule_text() else {
        return;
    };
    if !regex.is_some_and(|regex| regex.is_match(text)) {
        errors.add(field, "pattern", format!("must match the pattern `{source}`"));
    }
}

/// `custom = path::to_fn`: the function, called with the field, accepts it.
pub fn custom(
    errors: &mut ValidationErrors,
    field: &'static str,
    rule: &'static str,
    outcome: Result<(), RuleError>,
) {
    if let Err(error) = outcome {
        errors.add(field, rule, error.message());
    }
}

/// Container-level `#[credential(validate = path::to_fn)]`: the function's failures are kept.
pub fn whole(errors: &mut ValidationErrors, outcome: Result<(), ValidationErrors>) {
    if let Err(failures) = outcome {
        errors.extend(failures);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(check: impl FnOnce(&mut ValidationErrors)) -> Vec<String> {
        let mut errors = ValidationErrors::new();
        check(&mut errors);
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn length_counts_characters_of_text() {
        let name = "ééé".to_owned();
        assert!(failures(|e| length(e, "name", &name, Some(3), Some(3))).is_empty());
        assert_eq!(
            failures(|e| length(e, "name", &name, None, Some(2))),
            ["name: must be at most 2 characters long (length)"]
        );
    }

    #[test]
    #[cfg(feature = "url")]
    fn absent_optional_values_pass_every_rule() {
        let none: Option<String> = None;
        assert!(failures(|e| non_empty(e, "a", &none)).is_empty());
        assert!(failures(|e| url(e, "a", &none)).is_empty());
        assert!(failures(|e| range(e, "a", &None::<u16>, Some(1), None)).is_empty());
    }

    #[test]
    fn range_reports_its_bounds() {
        assert_eq!(
            failures(|e| range(e, "port", &0u16, Some(1), Some(65535))),
            ["port: must be between 1 and 65535 (range)"]
        );
        assert!(failures(|e| range(e, "ratio", &0.5f64, Some(0.0), Some(1.0))).is_empty());
    }

    #[test]
    #[cfg(feature = "url")]
    fn url_rule_rejects_relative_and_accepts_absolute() {
        let secret = SecretString::from("https://user:pw@example.com/hook?token=abc");
        assert!(failures(|e| url(e, "hook", &secret)).is_empty());
        assert_eq!(failures(|e| url(e, "hook", &"/relative".to_owned())).len(), 1);
        for bad in
            ["/relative", "https://", "https:///path", "ht tp://x", "https://x:80a/", "no-scheme"]
        {
            assert_eq!(failures(|e| url(e, "hook", &SecretString::from(bad))).len(), 1, "{bad}");
        }
        for good in
            ["https://[::1]:8443/a", "mailto:ops@example.com", "postgresql://u:p@db/x", "https://h"]
        {
            assert!(failures(|e| url(e, "hook", &SecretString::from(good))).is_empty(), "{good}");
        }
    }

    #[test]
    #[cfg(feature = "pattern")]
    fn pattern_message_names_the_pattern_not_the_value() {
        let regex = Regex::new("^ghp_").ok();
        let secret = SecretString::from("xoxb-planted");
        let shown = failures(|e| pattern(e, "token", &secret, regex.as_ref(), "^ghp_"));
        assert_eq!(shown, ["token: must match the pattern `^ghp_` (pattern)"]);
    }
}
