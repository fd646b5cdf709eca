//! A planted secret appears in no `Debug`, `Display`, redacted JSON, validation error or decode
//! error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use credential::prelude::*;
use credential::rules::RuleError;

const CANARY: &str = "CANARY-5f0c1d2e-never-print-me";

fn always_fails(_: &SecretString) -> Result<(), RuleError> {
    Err(RuleError::new("is refused"))
}

#[derive(Credential)]
#[credential(kind = "canary")]
struct Canary {
    #[secret]
    #[credential(validate(length(max = 3), pattern = "^x$", url, custom = always_fails))]
    token: SecretString,
    #[secret(reveal_last = 4)]
    masked: SecretString,
    #[secret]
    bytes: SecretSlice<u8>,
    #[secret]
    optional: Option<SecretString>,
    #[credential(validate(non_empty))]
    name: String,
}

fn planted() -> Canary {
    Canary {
        token: CANARY.into(),
        masked: CANARY.into(),
        bytes: CANARY.as_bytes().to_vec().into(),
        optional: Some(CANARY.into()),
        name: String::new(),
    }
}

fn assert_clean(what: &str, shown: &str) {
    assert!(!shown.contains(CANARY), "{what} leaks the secret: {shown}");
    // Also no long fragment of it (a mask may show the last four characters only).
    assert!(!shown.contains(&CANARY[..12]), "{what} leaks a prefix: {shown}");
    assert!(!shown.contains(&CANARY[CANARY.len() - 8..]), "{what} leaks a suffix: {shown}");
}

#[test]
fn debug_in_both_forms_is_clean() {
    let canary = planted();
    assert_clean("Debug", &format!("{canary:?}"));
    assert_clean("pretty Debug", &format!("{canary:#?}"));
    assert!(format!("{canary:?}").contains("****t-me"));
}

#[test]
fn redacted_display_debug_and_json_are_clean() {
    let canary = planted();
    assert_clean("redacted Display", &canary.redacted().to_string());
    assert_clean("redacted Debug", &format!("{:?}", canary.redacted()));
    let json = serde_json::to_string(&canary.redacted()).unwrap();
    assert_clean("redacted JSON", &json);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["token"], "[REDACTED]");
    assert_eq!(parsed["masked"], "****t-me");
    assert_eq!(parsed["name"], "");
}

#[test]
fn validation_errors_are_clean() {
    let errors = planted().validate().unwrap_err();
    assert!(errors.len() >= 5, "{errors}");
    assert_clean("validation Display", &errors.to_string());
    assert_clean("validation Debug", &format!("{errors:?}"));
    let error = credential::Error::from(errors);
    assert_clean("error Display", &error.to_string());
    assert_clean("error Debug", &format!("{error:?}"));
}

#[test]
fn decode_errors_are_clean() {
    let bytes = planted().encode();
    let canary_at =
        bytes.windows(CANARY.len()).position(|window| window == CANARY.as_bytes()).unwrap();
    // Break the encoding in ways that make decoding stop inside or right after a secret.
    let mut cases = vec![bytes[..canary_at + 5].to_vec(), bytes[..bytes.len() - 1].to_vec()];
    let mut invalid_utf8 = bytes.to_vec();
    invalid_utf8[canary_at + 3] = 0xff;
    cases.push(invalid_utf8);
    let mut extra = bytes.to_vec();
    extra.extend_from_slice(CANARY.as_bytes());
    cases.push(extra);
    for case in cases {
        let error = Canary::decode(&case).unwrap_err();
        assert_clean("decode error Display", &error.to_string());
        assert_clean("decode error Debug", &format!("{error:?}"));
    }
}

#[test]
fn kind_mismatch_shows_the_kind_not_the_payload() {
    #[derive(Credential)]
    struct Other {
        #[secret]
        token: SecretString,
    }
    let error = Other::decode(&planted().encode()).unwrap_err();
    assert_eq!(error.to_string(), "expected a credential of kind `other`, found kind `canary`");
}
