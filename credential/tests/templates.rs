//! Template resolution: placeholders, every error path, missing-placeholder handling, access
//! checks, and that no value reaches the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::Arc;

use credential::audit::{AuditQuery, AuditSink, MemoryAuditSink};
use credential::kinds::{BasicAuth, BearerToken};
use credential::prelude::*;
use credential::{AccessPolicy, Error, Grant, ResolveOptions};

const CANARY: &str = "CANARY-tpl-5e8d0c2b";

#[derive(Credential)]
#[credential(kind = "templated_webhook")]
struct Webhook {
    #[secret]
    url: SecretString,
    #[secret]
    signing_key: SecretSlice<u8>,
    channel: String,
}

#[derive(Credential)]
#[credential(kind = "two_secrets")]
struct TwoSecrets {
    #[secret]
    first: SecretString,
    #[secret]
    second: SecretString,
}

async fn activate<C: Credential>(manager: &Manager, id: &str, credential: C) {
    manager.create(id, credential).await.unwrap().activate().await.unwrap();
}

async fn setup(policy: Option<AccessPolicy>) -> (Manager, Arc<MemoryAuditSink>, Arc<MemoryStore>) {
    let audit = Arc::new(MemoryAuditSink::new());
    let store = Arc::new(MemoryStore::new());
    let mut builder = Manager::builder()
        .store(Arc::clone(&store))
        .key_ring(KeyRing::generate().unwrap())
        .audit(Arc::clone(&audit));
    if let Some(policy) = policy {
        builder = builder.access_policy(policy);
    }
    let manager = builder.build().await.unwrap();
    activate(&manager, "github/main", BearerToken::new(CANARY.into())).await;
    activate(
        &manager,
        "db.primary",
        BasicAuth { username: "app".into(), password: format!("{CANARY}-pw").into() },
    )
    .await;
    activate(
        &manager,
        "hooks/slack",
        Webhook {
            url: "https://hooks.example/x".into(),
            signing_key: vec![1, 2].into(),
            channel: "#ops".into(),
        },
    )
    .await;
    activate(&manager, "two", TwoSecrets { first: "a".into(), second: "b".into() }).await;
    (manager, audit, store)
}

fn ctx(manager: &Manager) -> Context {
    manager.context(Principal::new("workflow/deploy", "action/notify"))
}

use credential::Context;

#[tokio::test]
async fn placeholders_resolve_to_fields_and_sole_secrets() {
    let (manager, _, _) = setup(None).await;
    let ctx = ctx(&manager);
    let resolved = ctx
        .resolve("Bearer {{github/main.token}}; {{ db.primary.username }}:{{db.primary.password}}")
        .await
        .unwrap();
    assert_eq!(resolved.expose_secret(), format!("Bearer {CANARY}; app:{CANARY}-pw"));
    assert_eq!(ctx.resolve("{{github/main}}").await.unwrap().expose_secret(), CANARY);
    assert_eq!(ctx.resolve("#{{hooks/slack.channel}}").await.unwrap().expose_secret(), "##ops");
    assert_eq!(ctx.resolve("no placeholders").await.unwrap().expose_secret(), "no placeholders");

    let headers = ctx
        .resolve_headers([
            ("Authorization", "Bearer {{github/main}}"),
            ("X-Channel", "{{hooks/slack.channel}}"),
        ])
        .await
        .unwrap();
    assert_eq!(headers["Authorization"].expose_secret(), format!("Bearer {CANARY}"));
    let params = ctx
        .resolve_params(vec![("user".to_owned(), "{{db.primary.username}}".to_owned())])
        .await
        .unwrap();
    assert_eq!(params["user"].expose_secret(), "app");
}

#[tokio::test]
async fn every_error_path_is_a_clear_error() {
    let (manager, _, _) = setup(None).await;
    let ctx = ctx(&manager);
    type Expected = fn(&Error) -> bool;
    let cases: Vec<(&str, Expected)> = vec![
        ("{{github/main.token", |e| matches!(e, Error::Template { .. })),
        ("{{}}", |e| matches!(e, Error::Template { .. })),
        ("{{missing/id.token}}", |e| matches!(e, Error::NotFound { .. })),
        ("{{github/main.nope}}", |e| matches!(e, Error::UnknownField { .. })),
        ("{{two}}", |e| matches!(e, Error::AmbiguousField { .. })),
        ("{{hooks/slack}}", |e| matches!(e, Error::AmbiguousField { .. })),
        ("{{hooks/slack.signing_key}}", |e| matches!(e, Error::NotText { .. })),
        ("{{../etc.passwd}}", |e| matches!(e, Error::InvalidId { .. })),
    ];
    for (template, expected) in cases {
        let error = ctx.resolve(template).await.unwrap_err();
        assert!(expected(&error), "{template}: {error}");
        assert!(!error.to_string().contains(CANARY));
    }
}

#[tokio::test]
async fn missing_placeholders_can_be_left_in_place() {
    let (manager, _, _) = setup(None).await;
    let ctx = ctx(&manager);
    let resolved = ctx
        .resolve_with(
            "{{github/main}} {{missing/id.token}} {{github/main.nope}}",
            ResolveOptions::keep_missing(),
        )
        .await
        .unwrap();
    assert_eq!(
        resolved.expose_secret(),
        format!("{CANARY} {{{{missing/id.token}}}} {{{{github/main.nope}}}}")
    );
    // Other failures still fail.
    assert!(ctx.resolve_with("{{two}}", ResolveOptions::keep_missing()).await.is_err());
}

#[tokio::test]
async fn state_and_expiry_are_checked_like_get() {
    let (manager, _, _) = setup(None).await;
    let ctx = ctx(&manager);
    manager
        .load::<BearerToken>("github/main")
        .await
        .unwrap()
        .into_active()
        .unwrap()
        .revoke("test")
        .await
        .unwrap();
    assert!(matches!(ctx.resolve("{{github/main}}").await, Err(Error::Revoked { .. })));
    manager.create("draft", BearerToken::new("t".into())).await.unwrap();
    assert!(matches!(ctx.resolve("{{draft}}").await, Err(Error::NotActive { .. })));
    let expires = Utc::now() + chrono::Duration::seconds(1);
    activate(&manager, "old", BearerToken { token: "t".into(), expires: Some(expires) }).await;
    support::wait_until_past(expires).await;
    assert!(matches!(ctx.resolve("{{old}}").await, Err(Error::Expired { .. })));
}

#[tokio::test]
async fn denied_placeholders_look_missing_and_everything_is_audited_without_values() {
    let policy = AccessPolicy::new()
        .grant(Grant::admin("operator", "*"))
        .grant(Grant::read("workflow/deploy:*", "github/*"));
    let (manager, audit, _) = setup(Some(policy)).await;
    let ctx = ctx(&manager);
    assert!(ctx.resolve("{{github/main}}").await.is_ok());
    assert!(matches!(
        ctx.resolve("{{db.primary.password}}").await,
        Err(Error::AccessDenied { .. })
    ));
    assert!(matches!(ctx.resolve("{{nothing/here.x}}").await, Err(Error::AccessDenied { .. })));
    let kept = ctx
        .resolve_with("{{db.primary.password}}|{{nothing/here.x}}", ResolveOptions::keep_missing())
        .await
        .unwrap();
    assert_eq!(kept.expose_secret(), "{{db.primary.password}}|{{nothing/here.x}}");

    let events = audit
        .query(&AuditQuery::all().action(credential::audit::AuditAction::Resolve))
        .await
        .unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(
        events.iter().filter(|e| e.outcome == credential::audit::AuditOutcome::Denied).count(),
        4
    );
    assert!(!format!("{events:?}").contains(CANARY));
}

/// A kind that is not linked into the program (generic types are not: each `T` is a type of
/// its own), so a manager knows it only once it is registered.
#[derive(Credential)]
#[credential(kind = "registered_only")]
struct RegisteredOnly<S> {
    #[secret]
    key: S,
}

#[tokio::test]
async fn kinds_compiled_in_resolve_everywhere_and_generic_ones_after_registration() {
    let store = Arc::new(MemoryStore::new());
    let ring = KeyRing::generate().unwrap();
    let writer =
        Manager::builder().store(Arc::clone(&store)).key_ring(ring.clone()).build().await.unwrap();
    activate(&writer, "two", TwoSecrets { first: "a".into(), second: "b".into() }).await;
    activate(&writer, "generic", RegisteredOnly::<SecretString> { key: "g".into() }).await;

    // A manager that never named either type: the derive linked `two_secrets` in.
    let fresh =
        Manager::builder().store(Arc::clone(&store)).key_ring(ring.clone()).build().await.unwrap();
    assert_eq!(ctx(&fresh).resolve("{{two.first}}").await.unwrap().expose_secret(), "a");
    assert!(fresh.kinds().contains(&"two_secrets"));
    let error = ctx(&fresh).resolve("{{generic.key}}").await.unwrap_err();
    assert!(
        matches!(error, Error::UnknownKind { ref kind } if kind == "registered_only"),
        "{error}"
    );

    let registered = Manager::builder()
        .store(store)
        .key_ring(ring)
        .register::<RegisteredOnly<SecretString>>()
        .build()
        .await
        .unwrap();
    assert_eq!(ctx(&registered).resolve("{{generic.key}}").await.unwrap().expose_secret(), "g");
}

#[tokio::test]
#[ignore = "run by a_second_process_resolves_a_kind_it_never_names in a child process"]
#[allow(clippy::print_stdout)] // the marker the parent looks for
async fn resolving_child() {
    // This process never names `TwoSecrets`: it opens the store and resolves by id and field.
    let path = std::env::var("CREDENTIAL_TEST_STORE").unwrap();
    let manager = Manager::builder()
        .store(SqliteStore::open(path).await.unwrap())
        .key_ring(KeyRing::from_env("CREDENTIAL_TEST_MASTER_KEY").unwrap())
        .build()
        .await
        .unwrap();
    let resolved = ctx(&manager).resolve("{{two.second}}").await.unwrap();
    assert_eq!(resolved.expose_secret(), "b");
    let handle = manager.load_dyn("two").await.unwrap();
    assert_eq!(handle.kind(), "two_secrets");
    assert!(handle.redacted().await.is_ok());
    manager.shutdown().await.unwrap();
    println!("RESOLVED");
}

#[tokio::test]
async fn a_second_process_resolves_a_kind_it_never_names() {
    let scratch = support::scratch_dir("templates-linked-kinds");
    let path = scratch.join("credentials.db");
    let key = credential::crypto::MasterKey::generate().unwrap();
    let manager = Manager::builder()
        .store(SqliteStore::open(&path).await.unwrap())
        .key_ring(KeyRing::new(key.clone()))
        .build()
        .await
        .unwrap();
    activate(&manager, "two", TwoSecrets { first: "a".into(), second: "b".into() }).await;
    manager.shutdown().await.unwrap();

    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            support::test_named(module_path!(), "resolving_child").as_str(),
            "--nocapture",
        ])
        .env("CREDENTIAL_TEST_STORE", &path)
        .env("CREDENTIAL_TEST_MASTER_KEY", key.to_base64().expose_secret())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("RESOLVED"), "{stdout}");
}

#[derive(Credential)]
#[credential(kind = "optional_parts")]
struct OptionalParts {
    #[secret]
    token: SecretString,
    #[secret]
    refresh: Option<SecretString>,
    region: Option<String>,
}

#[tokio::test]
async fn a_field_with_no_value_is_an_error_naming_it_never_text_in_its_place() {
    let (manager, _, _) = setup(None).await;
    let parts = OptionalParts { token: CANARY.into(), refresh: None, region: None };
    activate(&manager, "svc/parts", parts).await;
    let ctx = ctx(&manager);
    for field in ["refresh", "region"] {
        let template = format!("X-Value: {{{{svc/parts.{field}}}}}");
        let error = ctx.resolve(&template).await.unwrap_err();
        match &error {
            Error::AbsentField { id, field: named } => {
                assert_eq!((id.as_str(), named.as_str()), ("svc/parts", field))
            }
            other => panic!("{field}: {other:?}"),
        }
        assert!(!error.to_string().contains(CANARY));
        let kept = ctx.resolve_with(&template, ResolveOptions::keep_missing()).await.unwrap();
        assert_eq!(kept.expose_secret(), template);
    }
    assert_eq!(ctx.resolve("{{svc/parts.token}}").await.unwrap().expose_secret(), CANARY);
}

#[tokio::test]
async fn headers_resolve_into_a_header_map_with_every_value_sensitive() {
    let (manager, _audit, _store) = setup(None).await;
    let token = BearerToken { token: CANARY.into(), expires: None };
    activate(&manager, "api/main", token).await;
    let ctx = ctx(&manager);
    let headers = ctx
        .resolve_header_map([("authorization", "Bearer {{api/main}}"), ("x-plain", "hello")])
        .await
        .unwrap();
    assert_eq!(headers["authorization"].to_str().unwrap(), format!("Bearer {CANARY}"));
    assert!(headers.values().all(http::HeaderValue::is_sensitive));
    assert!(!format!("{headers:?}").contains(CANARY));

    let bad_name = ctx.resolve_header_map([("bad name", "{{api/main}}")]).await.unwrap_err();
    assert_eq!(bad_name.code(), "invalid_header");
    assert_eq!(bad_name.to_string(), "header `bad name`: not a header name");
    // A value that would split the request is refused, and the error does not hold it.
    let multiline =
        BearerToken { token: format!("{CANARY}\r\nx-injected: 1").into(), expires: None };
    activate(&manager, "api/split", multiline).await;
    let split = ctx.resolve_header_map([("authorization", "{{api/split}}")]).await.unwrap_err();
    assert!(matches!(split, Error::InvalidHeader { .. }), "{split:?}");
    assert!(!format!("{split} {split:?}").contains(CANARY));
}
