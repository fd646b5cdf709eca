//! The validation rules of `#[credential(validate(...))]`.
//!
//! Each rule reaches the value through a small trait, so a rule that does not fit a field's type
//! is a compile error at the rule, and rules on secret fields read the secret in place without
//! formatting or copying it. An `Option` field passes every rule when it is `None`.

use std::collections::BTreeMap;
use std::fmt::Display;

use regex::Regex;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use zeroize::Zeroize;

use crate::{RuleError, ValidationErrors};

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
    fn rule_text(&self) -> Option<&str> {
        Some(self.expose_secret())
    }
}

impl<T: TextRule> TextRule for Option<T> {
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
pub fn range<T: RangeRule>(
    errors: &mut ValidationErrors,
    field: &'static str,
    value: &T,
    min: Option<T::Bound>,
    max: Option<T::Bound>,
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
pub fn url<T: TextRule>(errors: &mut ValidationErrors, field: &'static str, value: &T) {
    let Some(text) = value.rule_text() else {
        return;
    };
    match url::Url::parse(text) {
        Ok(parsed) => {
            // The parsed URL holds a copy of the text, which may be a secret.
            let mut copy: String = parsed.into();
            copy.zeroize();
        }
        Err(_) => errors.add(field, "url", "must be an absolute URL"),
    }
}

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
    fn url_rule_rejects_relative_and_accepts_absolute() {
        let secret = SecretString::from("https://user:pw@example.com/hook?token=abc");
        assert!(failures(|e| url(e, "hook", &secret)).is_empty());
        assert_eq!(failures(|e| url(e, "hook", &"/relative".to_owned())).len(), 1);
    }

    #[test]
    fn pattern_message_names_the_pattern_not_the_value() {
        let regex = Regex::new("^ghp_").ok();
        let secret = SecretString::from("xoxb-planted");
        let shown = failures(|e| pattern(e, "token", &secret, regex.as_ref(), "^ghp_"));
        assert_eq!(shown, ["token: must match the pattern `^ghp_` (pattern)"]);
    }
}
