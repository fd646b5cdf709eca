//! The generated storage encoding round-trips every supported field type and refuses bad bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use credential::Error;
use credential::field::DecodeReason;
use credential::prelude::*;

#[derive(Credential)]
#[credential(kind = "github")]
struct GitHub {
    #[secret]
    token: SecretString,
    #[credential(validate(non_empty, length(max = 39)))]
    username: String,
    #[credential(expires_at)]
    expires: Option<DateTime<Utc>>,
}

#[derive(Credential)]
#[credential(kind = "everything")]
struct Everything {
    #[secret(reveal_last = 4)]
    password: SecretString,
    #[secret]
    key: SecretSlice<u8>,
    #[secret]
    refresh: Option<SecretString>,
    port: u16,
    offset: i64,
    ratio: f64,
    enabled: bool,
    #[credential(rename = "scope_list")]
    scopes: Vec<String>,
    options: BTreeMap<String, String>,
    endpoint: Option<credential::field::Url>,
    #[credential(expires_at)]
    expires: DateTime<Utc>,
}

fn everything() -> Everything {
    Everything {
        password: "correct horse battery staple".into(),
        key: vec![0, 1, 2, 255].into(),
        refresh: Some("refresh-me".into()),
        port: 5432,
        offset: -42,
        ratio: 0.25,
        enabled: true,
        scopes: vec!["repo".into(), "read:org".into()],
        options: BTreeMap::from([("sslmode".into(), "require".into())]),
        endpoint: Some("https://example.com/api".parse().unwrap()),
        expires: DateTime::from_timestamp(1_900_000_000, 5).unwrap(),
    }
}

#[test]
fn every_field_type_round_trips() {
    let original = everything();
    let decoded = Everything::decode(&original.encode()).unwrap();
    assert_eq!(decoded.password.expose_secret(), "correct horse battery staple");
    assert_eq!(decoded.key.expose_secret(), &[0, 1, 2, 255]);
    assert_eq!(
        decoded.refresh.as_ref().map(|r| r.expose_secret().to_owned()),
        Some("refresh-me".into())
    );
    assert_eq!(decoded.port, 5432);
    assert_eq!(decoded.offset, -42);
    assert_eq!(decoded.ratio, 0.25);
    assert!(decoded.enabled);
    assert_eq!(decoded.scopes, original.scopes);
    assert_eq!(decoded.options, original.options);
    assert_eq!(decoded.endpoint, original.endpoint);
    assert_eq!(decoded.expires, original.expires);
    assert_eq!(decoded.expires_at(), Some(original.expires));
}

#[test]
fn debug_redacts_secrets_and_shows_plain_fields() {
    let github = GitHub { token: "ghp_planted".into(), username: "octocat".into(), expires: None };
    assert_eq!(
        format!("{github:?}"),
        r#"GitHub { token: [REDACTED], username: "octocat", expires: None }"#
    );
}

#[test]
fn schema_lists_stored_names_and_secrets() {
    let names: Vec<_> = Everything::FIELDS.iter().map(|f| f.name).collect();
    assert!(names.contains(&"scope_list"));
    let secrets: Vec<_> =
        Everything::FIELDS.iter().filter(|f| f.is_secret()).map(|f| f.name).collect();
    assert_eq!(secrets, ["password", "key", "refresh"]);
    assert_eq!(GitHub::KIND, "github");
}

#[test]
fn decoding_another_kind_is_a_kind_mismatch() {
    let bytes = everything().encode();
    match GitHub::decode(&bytes) {
        Err(Error::KindMismatch { expected, found }) => {
            assert_eq!((expected.as_str(), found.as_str()), ("github", "everything"));
        }
        other => panic!("expected KindMismatch, got {other:?}"),
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = everything().encode();
    for len in 0..bytes.len() {
        assert!(Everything::decode(&bytes[..len]).is_err(), "truncated to {len} bytes decoded");
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut bytes = everything().encode().to_vec();
    bytes.push(0);
    let error = Everything::decode(&bytes).unwrap_err();
    assert!(
        matches!(error, Error::Decode { ref source, .. } if source.reason() == &DecodeReason::TrailingBytes)
    );
}

#[test]
fn every_single_byte_flip_decodes_or_errors_without_panicking() {
    let bytes = everything().encode();
    for position in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.to_vec();
            flipped[position] ^= 1 << bit;
            let _ = Everything::decode(&flipped);
        }
    }
}
