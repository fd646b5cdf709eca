//! `validate()` reports every failed rule with field and rule, and never the value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use credential::ValidationErrors;
use credential::prelude::*;
use credential::rules::RuleError;

fn no_spaces(value: &str) -> Result<(), RuleError> {
    if value.contains(' ') { Err(RuleError::new("must not contain spaces")) } else { Ok(()) }
}

fn starts_with_ghp(token: &SecretString) -> Result<(), RuleError> {
    if token.expose_secret().starts_with("ghp_") {
        Ok(())
    } else {
        Err(RuleError::new("must start with `ghp_`"))
    }
}

fn window_is_ordered(window: &Window) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if window.first_port > window.last_port {
        errors.add("first_port", "ordered_ports", "must not be above `last_port`");
    }
    errors.into_result()
}

#[derive(Credential)]
#[credential(kind = "window", validate = window_is_ordered)]
struct Window {
    #[secret]
    #[credential(validate(non_empty, length(min = 8, max = 64), pattern = "^ghp_", custom = starts_with_ghp))]
    token: SecretString,
    #[credential(validate(non_empty, custom = no_spaces))]
    owner: String,
    #[credential(validate(range(min = 1, max = 65535)))]
    first_port: u32,
    #[credential(validate(range(min = 1, max = 65535)))]
    last_port: u32,
    #[credential(validate(url))]
    homepage: Option<String>,
    #[secret]
    #[credential(validate(url))]
    webhook: SecretString,
    #[credential(validate(length(max = 2)))]
    scopes: Vec<String>,
}

fn valid() -> Window {
    Window {
        token: "ghp_0123456789".into(),
        owner: "octocat".into(),
        first_port: 80,
        last_port: 443,
        homepage: None,
        webhook: "https://hooks.example.com/T000/B000/planted-webhook-secret".into(),
        scopes: vec!["repo".into()],
    }
}

#[test]
fn a_valid_credential_passes() {
    valid().validate().unwrap();
}

#[test]
fn all_failures_are_reported_at_once() {
    let window = Window {
        token: "".into(),
        owner: "octo cat".into(),
        first_port: 70_000,
        last_port: 0,
        homepage: Some("not a url".into()),
        webhook: "planted-webhook-secret".into(),
        scopes: vec!["a".into(), "b".into(), "c".into()],
    };
    let errors = window.validate().unwrap_err();
    let found: Vec<_> = errors.iter().map(|e| (e.field(), e.rule())).collect();
    assert_eq!(
        found,
        [
            ("token", "non_empty"),
            ("token", "length"),
            ("token", "pattern"),
            ("token", "starts_with_ghp"),
            ("owner", "no_spaces"),
            ("first_port", "range"),
            ("last_port", "range"),
            ("homepage", "url"),
            ("webhook", "url"),
            ("scopes", "length"),
            ("first_port", "ordered_ports"),
        ]
    );
    let shown = errors.to_string();
    assert!(!shown.contains("planted-webhook-secret"), "{shown}");
    assert!(!shown.contains("octo cat"), "{shown}");
    assert!(shown.contains("token: must be 8 to 64 characters long (length)"), "{shown}");
}

#[test]
fn validation_errors_convert_into_the_crate_error() {
    fn check(window: &Window) -> credential::Result<()> {
        window.validate()?;
        Ok(())
    }
    let mut window = valid();
    window.owner = String::new();
    let error = check(&window).unwrap_err();
    assert!(matches!(error, credential::Error::Validation(ref errors) if errors.len() == 1));
    assert_eq!(error.to_string(), "invalid credential: owner: must not be empty (non_empty)");
}
