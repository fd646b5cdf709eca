//! The built-in kinds: good and bad input, a round trip through the manager, and no secret in any
//! redacted view.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use base64ct::Encoding;
use credential::kinds::{ApiKey, Aws, BasicAuth, BearerToken, Database, OAuth2Token};
use credential::prelude::*;

const CANARY: &str = "CANARYa1b2c3d4e5f6g7h8i9j0CANARY";

async fn manager() -> Manager {
    Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .build()
        .await
        .unwrap()
}

/// Stores `credential` through the manager, reads it back through a context, and checks that no
/// redacted view shows the canary.
async fn round_trip<C: Credential>(id: &str, credential: C) -> std::sync::Arc<C> {
    let manager = manager().await;
    let shown = format!(
        "{credential:?} {credential:#?} {} {}",
        credential.redacted(),
        serde_json::to_string(&credential.redacted()).unwrap()
    );
    assert!(!shown.contains(CANARY) && !shown.contains(&CANARY[..12]), "{shown}");
    manager.create(id, credential).await.unwrap().activate().await.unwrap();
    manager.context(Principal::new("workflow/kinds", "action/read")).get::<C>(id).await.unwrap()
}

#[tokio::test]
async fn api_key() {
    let key = ApiKey { key: CANARY.into(), header: Some("X-API-Key".into()) };
    let back = round_trip("svc/key", key).await;
    assert_eq!((back.key.expose_secret(), back.header.as_deref()), (CANARY, Some("X-API-Key")));
    assert!(ApiKey { key: "".into(), header: None }.validate().is_err());
    assert!(ApiKey { key: "k".into(), header: Some("Bad Header:".into()) }.validate().is_err());
}

#[tokio::test]
async fn basic_auth() {
    let auth = BasicAuth { username: "deploy".into(), password: CANARY.into() };
    let expected =
        format!("Basic {}", base64ct::Base64::encode_string(format!("deploy:{CANARY}").as_bytes()));
    assert_eq!(auth.authorization().expose_secret(), expected);
    let back = round_trip("svc/basic", auth).await;
    assert_eq!(back.password.expose_secret(), CANARY);
    assert!(BasicAuth { username: "a:b".into(), password: "p".into() }.validate().is_err());
    assert!(BasicAuth { username: "".into(), password: "p".into() }.validate().is_err());
}

#[tokio::test]
async fn bearer_token_takes_its_expiry_from_a_jwt() {
    let payload = base64ct::Base64UrlUnpadded::encode_string(br#"{"sub":"ci","exp":4102444800}"#);
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.{CANARY}");
    let token = BearerToken::new(jwt.clone().into());
    assert_eq!(token.expires_at().map(|at| at.timestamp()), Some(4_102_444_800));
    assert_eq!(token.authorization().expose_secret(), format!("Bearer {jwt}"));
    let back = round_trip("svc/bearer", token).await;
    assert_eq!(back.token.expose_secret(), jwt);

    // A JWT that has expired does not go into service.
    let stale = format!(
        "eyJhbGciOiJIUzI1NiJ9.{}.sig",
        base64ct::Base64UrlUnpadded::encode_string(br#"{"exp":1000000000}"#)
    );
    let manager = manager().await;
    let draft = manager.create("svc/stale", BearerToken::new(stale.into())).await.unwrap();
    assert!(matches!(draft.activate().await, Err(credential::Error::Expired { .. })));
    assert_eq!(BearerToken::new("opaque".into()).expires, None);
}

#[tokio::test]
async fn oauth2_token() {
    let token = OAuth2Token {
        access_token: CANARY.into(),
        refresh_token: Some(format!("refresh-{CANARY}").into()),
        token_type: "Bearer".into(),
        scopes: vec!["repo".into(), "read:org".into()],
        expires: DateTime::from_timestamp(4_102_444_800, 0),
        client: Some("svc/oauth-client".into()),
    };
    let back = round_trip("svc/oauth", token).await;
    assert_eq!(back.client.as_deref(), Some("svc/oauth-client"));
    assert_eq!(back.scopes, ["repo", "read:org"]);
    assert_eq!(
        back.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()),
        Some(format!("refresh-{CANARY}"))
    );
    let missing_type = OAuth2Token {
        access_token: "a".into(),
        refresh_token: None,
        token_type: "".into(),
        scopes: vec![],
        expires: None,
        client: None,
    };
    assert!(missing_type.validate().is_err());
}

#[tokio::test]
async fn aws_masks_the_access_key_id_to_its_first_four_characters() {
    let aws = Aws {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: CANARY.into(),
        session_token: None,
        region: "eu-west-1".into(),
        expires: None,
    };
    let shown = aws.redacted().to_string();
    assert!(shown.contains("access_key_id: AKIA****") && !shown.contains("IOSFODNN"), "{shown}");
    let back = round_trip("cloud/aws", aws).await;
    assert_eq!(back.secret_access_key.expose_secret(), CANARY);
    let bad = Aws {
        access_key_id: "akia-lowercase".into(),
        secret_access_key: "s".into(),
        session_token: Some("".into()),
        region: "Europe".into(),
        expires: None,
    };
    let fields: Vec<_> = bad.validate().unwrap_err().iter().map(|e| e.field().to_owned()).collect();
    assert_eq!(fields, ["access_key_id", "access_key_id", "session_token", "region"]);
}

#[tokio::test]
async fn database_round_trips_through_url_and_manager() {
    let db = Database {
        driver: "postgresql".into(),
        host: "db.internal".into(),
        port: 5432,
        database: "orders".into(),
        user: "app".into(),
        password: format!("{CANARY}@:/?#%✓").into(),
        tls_mode: Some("require".into()),
        options: BTreeMap::new(),
    };
    let url = db.url();
    assert!(!url.expose_secret().contains("@:/?#%"), "reserved characters must be encoded");
    let parsed = Database::from_url(url.expose_secret()).unwrap();
    assert_eq!(parsed.password.expose_secret(), db.password.expose_secret());
    let back = round_trip("db/orders", parsed).await;
    assert_eq!(back.url().expose_secret(), url.expose_secret());
    let mut bad = Database::from_url("mysql://u:p@h/d").unwrap();
    bad.driver = "oracle".into();
    bad.port = 0;
    assert_eq!(bad.validate().unwrap_err().len(), 2);
}
