//! Checks across attributes and fields. Code generation only accepts the [`Checked`] model this
//! produces, never raw attributes.

use std::collections::HashMap;

use quote::ToTokens;
use syn::{Expr, GenericArgument, GenericParam, Lit, Path, PathArguments, Type, UnOp};

use crate::ast::{Field, Input};
use crate::attr::{Rule, RuleKind};
use crate::case::snake_case;
use crate::ctxt::Ctxt;

/// The longest kind tag accepted.
const MAX_KIND_LEN: usize = 64;

/// An input that passed every check, with defaults resolved.
pub(crate) struct Checked<'a> {
    pub(crate) input: Input<'a>,
    pub(crate) kind: String,
    pub(crate) krate: Path,
}

/// Checks `input`, recording every problem in `cx`. Returns the checked model; it is only used
/// when `cx` holds no errors.
pub(crate) fn check<'a>(cx: &Ctxt, input: Input<'a>) -> Checked<'a> {
    let kind = check_kind(cx, &input);
    check_generics(cx, &input);
    if input.fields.is_empty() {
        cx.error_spanned_by(input.ident, "a credential needs at least one field");
    }
    check_unique_names(cx, &input.fields);
    check_single_expiry(cx, &input.fields);
    for field in &input.fields {
        check_secret_marking(cx, field);
        for rule in &field.attrs.rules {
            check_rule(cx, rule);
            check_rule_fits(cx, field, rule);
        }
    }
    let krate = input.attrs.krate.get().cloned().unwrap_or_else(|| syn::parse_quote!(::credential));
    Checked { input, kind, krate }
}

fn check_kind(cx: &Ctxt, input: &Input) -> String {
    let (kind, spanned): (String, &dyn ToTokens) = match input.attrs.kind.get() {
        Some(literal) => (literal.value(), literal),
        None => (snake_case(&input.ident.to_string()), input.ident),
    };
    let valid_char =
        |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "_-./".contains(ch);
    let starts_well = kind.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit());
    if !starts_well || kind.len() > MAX_KIND_LEN || !kind.chars().all(valid_char) {
        cx.error_spanned_by(
            spanned,
            format!(
                "kind `{kind}` is not a valid kind tag: use 1 to {MAX_KIND_LEN} characters of `a-z`, `0-9`, `_`, `-`, `.`, `/`, starting with a letter or digit"
            ),
        );
    }
    kind
}

fn check_generics(cx: &Ctxt, input: &Input) {
    for param in &input.generics.params {
        if let GenericParam::Lifetime(lifetime) = param {
            cx.error_spanned_by(
                lifetime,
                "a credential owns its data: remove the lifetime parameter",
            );
        }
    }
}

fn check_unique_names(cx: &Ctxt, fields: &[Field]) {
    let mut seen = HashMap::new();
    for field in fields {
        let name = field.stored_name();
        if name.is_empty() {
            cx.error_spanned_by(field.attrs.rename.get(), "a stored field name cannot be empty");
        }
        if let Some(first) = seen.insert(name.clone(), field.ident) {
            let at: &dyn ToTokens = match field.attrs.rename.get() {
                Some(rename) => rename,
                None => field.ident,
            };
            cx.error_spanned_by(
                at,
                format!("stored name `{name}` is already used by field `{first}`"),
            );
        }
    }
}

fn check_single_expiry(cx: &Ctxt, fields: &[Field]) {
    let mut first = None;
    for field in fields {
        let Some(path) = field.attrs.expires_at.path() else {
            continue;
        };
        if field.is_secret() {
            cx.error_spanned_by(path, "`expires_at` cannot be a secret field: expiry is metadata");
        }
        match first {
            None => first = Some(field.ident),
            Some(first) => cx.error_spanned_by(
                path,
                format!(
                    "`expires_at` is already set on field `{first}`: a credential has one expiry"
                ),
            ),
        }
    }
}

/// Catches the two common mistakes by name, with a message that says what to do; the trait
/// bounds in the generated code catch the rest.
fn check_secret_marking(cx: &Ctxt, field: &Field) {
    let type_name = innermost_type_name(field.ty);
    let is_secret_type = type_name.as_deref().is_some_and(|name| name.starts_with("Secret"));
    match &field.attrs.secret {
        Some(_) => {
            if let Some(name) =
                type_name.as_deref().filter(|name| ["String", "str", "Vec"].contains(name))
            {
                let suggestion = if name == "Vec" { "SecretSlice<u8>" } else { "SecretString" };
                cx.error_spanned_by(
                    field.ty,
                    format!("`{name}` is not a secret type: use `{suggestion}`, which is redacted and zeroized on drop"),
                );
            }
        }
        None if is_secret_type => {
            let name = type_name.unwrap_or_default();
            cx.error_spanned_by(
                field.ty,
                format!("`{name}` holds a secret: mark the field `#[secret]`"),
            );
        }
        None => {}
    }
}

fn check_rule(cx: &Ctxt, rule: &Rule) {
    match &rule.kind {
        RuleKind::Length { min: None, max: None } => {
            cx.error_spanned_by(
                &rule.name,
                "`length` needs bounds: `length(min = 1, max = 64)`, either one or both",
            );
        }
        RuleKind::Length { min, max } => {
            let parse = |literal: &Option<syn::LitInt>| {
                literal.as_ref().map(|literal| {
                    literal.base10_parse::<usize>().map_err(|_| {
                        cx.error_spanned_by(literal, "expected a length: a whole number");
                    })
                })
            };
            if let (Some(Ok(min)), Some(Ok(max))) = (parse(min), parse(max))
                && min > max
            {
                cx.error_spanned_by(&rule.name, format!("`length` has min {min} above max {max}"));
            }
        }
        RuleKind::Range { min: None, max: None } => {
            cx.error_spanned_by(
                &rule.name,
                "`range` needs bounds: `range(min = 1, max = 65535)`, either one or both",
            );
        }
        RuleKind::Range { min: Some(min), max: Some(max) } => {
            if let (Some(low), Some(high)) = (numeric_literal(min), numeric_literal(max))
                && low > high
            {
                cx.error_spanned_by(&rule.name, format!("`range` has min {low} above max {high}"));
            }
        }
        #[cfg(feature = "pattern")]
        RuleKind::Pattern(literal) => {
            if let Err(error) = regex_syntax::Parser::new().parse(&literal.value()) {
                let reason = error.to_string();
                let summary =
                    reason.lines().last().unwrap_or("invalid syntax").trim_start_matches("error: ");
                cx.error_spanned_by(literal, format!("invalid regular expression: {summary}"));
            }
        }
        #[cfg(not(feature = "pattern"))]
        RuleKind::Pattern(_) => cx.error_spanned_by(
            &rule.name,
            "the `pattern` rule needs the `pattern` feature of `credential`",
        ),
        #[cfg(not(feature = "url"))]
        RuleKind::Url => cx
            .error_spanned_by(&rule.name, "the `url` rule needs the `url` feature of `credential`"),
        #[cfg(feature = "url")]
        RuleKind::Url => {}
        RuleKind::Range { .. } | RuleKind::NonEmpty | RuleKind::Custom(_) => {}
    }
}

/// Number types the `range` rule applies to.
const NUMBERS: &[&str] =
    &["u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "f64"];
/// Types that are known here not to be numbers.
const NOT_NUMBERS: &[&str] = &[
    "String",
    "str",
    "SecretString",
    "SecretSlice",
    "SecretBox",
    "Vec",
    "BTreeMap",
    "HashMap",
    "bool",
    "Url",
    "DateTime",
    "f32",
];
/// Types with a length (the `length` and `non_empty` rules).
const WITH_LENGTH: &[&str] = &["String", "SecretString", "SecretSlice", "Vec", "BTreeMap"];
/// Text types (the `url` and `pattern` rules).
const TEXT: &[&str] = &["String", "SecretString"];

/// Refuses, at the rule and once, a rule on a field whose type the derive can tell it does not
/// apply to. Types it cannot tell (aliases, types of your own) are left to the compiler, whose
/// error names the rule too.
fn check_rule_fits(cx: &Ctxt, field: &Field, rule: &Rule) {
    let Some(name) = innermost_type_name(field.ty) else { return };
    let name = name.as_str();
    let (applies, to_what) = match &rule.kind {
        RuleKind::Range { .. } => {
            (!NOT_NUMBERS.contains(&name), "it applies to integers, `f64` and `Option` of those")
        }
        RuleKind::Length { .. } | RuleKind::NonEmpty => (
            WITH_LENGTH.contains(&name)
                || !(NUMBERS.contains(&name) || ["bool", "f32", "Url", "DateTime"].contains(&name)),
            "it applies to text, secrets, lists and maps (and `Option` of those)",
        ),
        RuleKind::Url | RuleKind::Pattern(_) => (
            TEXT.contains(&name) || !(NUMBERS.contains(&name) || NOT_NUMBERS.contains(&name)),
            "it applies to `String`, `SecretString` and `Option` of those",
        ),
        RuleKind::Custom(_) => (true, ""),
    };
    if !applies {
        let rule_name = rule.name.get_ident().map(ToString::to_string).unwrap_or_default();
        cx.error_spanned_by(
            &rule.name,
            format!("the `{rule_name}` rule does not apply to `{name}`: {to_what}"),
        );
    }
}

/// The value of a (possibly negated) integer or float literal.
fn numeric_literal(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Lit(literal) => match &literal.lit {
            Lit::Int(int) => int.base10_parse::<f64>().ok(),
            Lit::Float(float) => float.base10_parse::<f64>().ok(),
            _ => None,
        },
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            numeric_literal(&unary.expr).map(|value| -value)
        }
        Expr::Group(group) => numeric_literal(&group.expr),
        _ => None,
    }
}

/// The last path segment's name, looking through `Option<...>`: `Option<SecretString>` →
/// `SecretString`, `&str` → `str`.
fn innermost_type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) => {
            let segment = path.path.segments.last()?;
            if segment.ident == "Option"
                && let PathArguments::AngleBracketed(arguments) = &segment.arguments
                && let Some(GenericArgument::Type(inner)) = arguments.args.first()
            {
                return innermost_type_name(inner);
            }
            Some(segment.ident.to_string())
        }
        Type::Reference(reference) => innermost_type_name(&reference.elem),
        Type::Group(group) => innermost_type_name(&group.elem),
        Type::Paren(paren) => innermost_type_name(&paren.elem),
        _ => None,
    }
}
