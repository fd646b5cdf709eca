//! Operators without the Rust type: a manager that never named a credential's type inspects and
//! revokes it by id (a kind not compiled into the program keeps its fields to itself); every
//! operation is attributed to the principal that made it; reads by version refuse what `get`
//! refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use credential::audit::{AuditAction, AuditQuery, MemoryAuditSink};
use credential::prelude::*;
use credential::{CacheConfig, Error, LifecycleState, VersionState};
use support::scratch_dir;

/// A kind the "workflow" side of these tests names; linked into the program, every manager here
/// knows it.
#[derive(Credential)]
#[credential(kind = "webhook")]
struct Webhook {
    #[secret(reveal_last = 4)]
    signing_key: SecretString,
    url: String,
    #[credential(expires_at)]
    expires: Option<DateTime<Utc>>,
}

/// A kind not linked into the program (a generic type is not): known only where registered, as a
/// kind the operator's program was not compiled with.
#[derive(Credential)]
#[credential(kind = "unlinked")]
struct Unlinked<S> {
    #[secret]
    key: S,
}

fn webhook(key: &str) -> Webhook {
    Webhook { signing_key: key.into(), url: "https://hooks.example/in".into(), expires: None }
}

/// A manager over a memory store that knows the `webhook` kind by name.
async fn memory_manager_knowing_webhooks() -> Manager {
    Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .register::<Webhook>()
        .build()
        .await
        .unwrap()
}

async fn manager_on(store: &SqliteStore, ring: &KeyRing) -> Manager {
    Manager::builder()
        .store(store.clone())
        .key_ring(ring.clone())
        .audit(MemoryAuditSink::new())
        .cache(CacheConfig::new(std::time::Duration::from_secs(3600), 100))
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_never_saw_the_type_revokes_it_by_id() {
    let dir = scratch_dir("untyped-revoke");
    // One store handle shared in the process: each manager hears of the other's writes at once
    // (another process would within milliseconds, through the store's change feed).
    let store = SqliteStore::open(dir.join("credentials.db")).await.unwrap();
    let ring = KeyRing::generate().unwrap();
    let workflow = manager_on(&store, &ring).await;
    let active = workflow.create("hooks/in", webhook("whsec_0123456789")).await.unwrap();
    active.activate().await.unwrap();
    let ctx = workflow.context(Principal::new("workflow/billing", "action/notify"));
    ctx.get::<Webhook>("hooks/in").await.unwrap();

    let operator = manager_on(&store, &ring).await.acting_as(Principal::named("ops:alice"));
    let handle = operator.load_dyn("hooks/in").await.unwrap();
    assert_eq!(
        (handle.kind(), handle.state(), handle.version()),
        ("webhook", LifecycleState::Active, 1)
    );
    assert_eq!(handle.history().len(), 1);
    // Its fields need the kind compiled in: without it the view is refused, the lifecycle is not.
    assert!(handle.redacted().await.is_ok());
    let unlinked = workflow.create("other/in", Unlinked::<SecretString> { key: "k".into() });
    unlinked.await.unwrap().activate().await.unwrap();
    let other = operator.load_dyn("other/in").await.unwrap();
    assert!(matches!(other.redacted().await, Err(Error::UnknownKind { .. })));
    assert!(matches!(
        operator.load_dyn("hooks/in").await.unwrap().commit().await,
        Err(Error::WrongState { expected: LifecycleState::Rotating, .. })
    ));
    let revoked = handle.revoke("signing key leaked").await.unwrap();
    assert_eq!(revoked.state(), LifecycleState::Revoked);
    assert!(revoked.history().iter().all(|version| version.state == VersionState::Destroyed));

    // The workflow's manager, caching for an hour, refuses it at once.
    assert!(matches!(ctx.get::<Webhook>("hooks/in").await, Err(Error::Revoked { .. })));
    let events =
        operator.audit().query(&AuditQuery::all().action(AuditAction::Revoke)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(&*events[0].principal, "ops:alice");
    assert_eq!(events[0].reason.as_deref(), Some("signing key leaked"));
}

#[tokio::test]
async fn a_known_kind_shows_a_redacted_view_and_moves_through_its_lifecycle() {
    let manager = memory_manager_knowing_webhooks().await;
    manager.create("hooks/in", webhook("whsec_0123456789")).await.unwrap();
    let draft = manager.load_dyn("hooks/in").await.unwrap();
    let view = draft.redacted().await.unwrap();
    let shown: Vec<(&str, bool, &str)> =
        view.iter().map(|field| (field.name, field.secret, field.value.as_str())).collect();
    assert_eq!(
        shown,
        [
            ("signing_key", true, "****6789"),
            ("url", false, "https://hooks.example/in"),
            ("expires", false, "none")
        ]
    );
    assert!(!format!("{view:?}").contains("whsec_0123456789"));
    let active = draft.activate().await.unwrap();
    assert_eq!(active.state(), LifecycleState::Active);
    assert!(matches!(active.activate().await, Err(Error::WrongState { .. })));

    let typed = manager.load::<Webhook>("hooks/in").await.unwrap().into_active().unwrap();
    typed.rotate(webhook("whsec_abcdefabcdef")).await.unwrap();
    let rotating = manager.load_dyn("hooks/in").await.unwrap();
    let active = rotating.commit().await.unwrap();
    assert_eq!(active.version(), 2);
    let ctx = manager.context(Principal::named("reader"));
    assert_eq!(
        ctx.get::<Webhook>("hooks/in").await.unwrap().signing_key.expose_secret(),
        "whsec_abcdefabcdef"
    );
}

#[tokio::test]
async fn reads_by_version_refuse_drafts_and_expired_versions() {
    let manager = memory_manager_knowing_webhooks().await;
    let ctx = manager.context(Principal::named("reader"));
    let draft = manager.create("hooks/draft", webhook("whsec_draft_0001")).await.unwrap();
    assert!(matches!(
        ctx.get_version::<Webhook>("hooks/draft", 1).await,
        Err(Error::NotActive { .. })
    ));
    draft.activate().await.unwrap();
    assert!(ctx.get_version::<Webhook>("hooks/draft", 1).await.is_ok());

    let mut stale = webhook("whsec_expired_01");
    let expires = Utc::now() + chrono::Duration::seconds(1);
    stale.expires = Some(expires);
    manager.create("hooks/old", stale).await.unwrap().activate().await.unwrap();
    support::wait_until_past(expires).await;
    assert!(matches!(ctx.get::<Webhook>("hooks/old").await, Err(Error::Expired { .. })));
    assert!(matches!(ctx.get_version::<Webhook>("hooks/old", 1).await, Err(Error::Expired { .. })));
}

#[tokio::test]
async fn registered_kinds_are_created_and_rotated_from_field_values() {
    use credential::{FieldValues, kinds::BasicAuth};
    let manager = memory_manager_knowing_webhooks().await;
    let canary = "CANARY-field-values-7d2e";
    let values = FieldValues::new()
        .secret("signing_key", format!("{canary}-1").into())
        .plain("url", "https://hooks.example/in")
        .plain("expires", "2099-01-01T00:00:00Z");
    let draft = manager.create_dyn("webhook", "hooks/ops", &values).await.unwrap();
    assert_eq!(
        draft.meta().expires_at.map(|at| at.to_rfc3339()).as_deref(),
        Some("2099-01-01T00:00:00+00:00")
    );
    let active = draft.activate().await.unwrap();
    let ctx = manager.context(Principal::named("reader"));
    let typed = ctx.get::<Webhook>("hooks/ops").await.unwrap();
    assert_eq!(typed.signing_key.expose_secret(), format!("{canary}-1"));

    let next = FieldValues::new()
        .secret("signing_key", format!("{canary}-2").into())
        .plain("url", "https://hooks.example/v2");
    let rotating = active.rotate(&next).await.unwrap();
    assert_eq!(rotating.state(), LifecycleState::Rotating);
    rotating.commit().await.unwrap();
    assert_eq!(ctx.get::<Webhook>("hooks/ops").await.unwrap().url, "https://hooks.example/v2");

    // Built-in kinds need no registration.
    let basic = FieldValues::new().plain("username", "ops").secret("password", canary.into());
    manager.create_dyn("basic_auth", "svc/basic", &basic).await.unwrap().activate().await.unwrap();
    assert_eq!(ctx.get::<BasicAuth>("svc/basic").await.unwrap().username, "ops");

    // Mistakes name the field and never the value.
    let refused = [
        manager.create_dyn("nope", "x/1", &values).await.unwrap_err(),
        manager
            .create_dyn("webhook", "x/2", &FieldValues::new().plain("signing_key", canary))
            .await
            .unwrap_err(),
        manager
            .create_dyn("webhook", "x/3", &FieldValues::new().secret("url", canary.into()))
            .await
            .unwrap_err(),
        manager
            .create_dyn("webhook", "x/4", &FieldValues::new().plain("colour", canary))
            .await
            .unwrap_err(),
        manager
            .create_dyn(
                "webhook",
                "x/5",
                &FieldValues::new()
                    .secret("signing_key", canary.into())
                    .plain("url", "https://h/")
                    .plain("expires", canary),
            )
            .await
            .unwrap_err(),
        manager
            .create_dyn("webhook", "x/6", &FieldValues::new().plain("url", "https://h/"))
            .await
            .unwrap_err(),
    ];
    let codes: Vec<&str> = refused.iter().map(Error::code).collect();
    assert_eq!(
        codes,
        [
            "unknown_kind",
            "invalid_field_value",
            "invalid_field_value",
            "unknown_field",
            "invalid_field_value",
            "invalid_field_value"
        ]
    );
    for error in &refused {
        assert!(!format!("{error} {error:?}").contains(canary), "{error}");
    }
    // A required field left out is named, with what to do.
    assert_eq!(
        refused[5].to_string(),
        "field `signing_key` of kind `webhook` is required: give a value"
    );
    assert!(manager.list(&credential::ListFilter::all().id_prefix("x/")).await.unwrap().is_empty());
}

#[tokio::test]
async fn reveal_is_audited_and_rollback_to_restores_an_older_version() {
    let manager = memory_manager_knowing_webhooks().await;
    let values = |key: &str| {
        credential::FieldValues::new()
            .secret("signing_key", key.into())
            .plain("url", "https://hooks.example/in")
    };
    let draft =
        manager.create_dyn("webhook", "hooks/out", &values("whsec_first_0001")).await.unwrap();
    let active = draft.activate().await.unwrap();
    let rotated =
        active.rotate(&values("whsec_second_0002")).await.unwrap().commit().await.unwrap();
    let fields = rotated.reveal().await.unwrap();
    let key = fields.iter().find(|field| field.name == "signing_key").unwrap();
    assert!(key.secret);
    assert_eq!(key.value.expose_secret(), "whsec_second_0002");
    assert!(!format!("{fields:?}").contains("whsec_second"));
    let reveals = manager.audit().query(&AuditQuery::all().action(AuditAction::Reveal)).await;
    assert_eq!(reveals.unwrap().len(), 1);

    let restored = rotated.rollback_to(1).await.unwrap();
    assert_eq!(restored.version(), 3);
    let fields = restored.reveal().await.unwrap();
    assert_eq!(fields[0].value.expose_secret(), "whsec_first_0001");
    let Err(Error::VersionUnavailable { version: 3, .. }) = restored.rollback_to(3).await else {
        panic!("the current version is not restorable");
    };
}

#[tokio::test]
async fn an_export_imports_under_another_master_key_with_its_history() {
    let source = memory_manager_knowing_webhooks().await;
    let active = source.create("hooks/in", webhook("whsec_v1_canary")).await.unwrap();
    let active = active.activate().await.unwrap();
    active.rotate(webhook("whsec_v2_canary")).await.unwrap().commit().await.unwrap();
    source.create("hooks/draft", webhook("whsec_draft")).await.unwrap();
    let revoked = source.create("hooks/gone", webhook("whsec_gone")).await.unwrap();
    revoked.activate().await.unwrap().revoke("leaked").await.unwrap();

    let mut exported = Vec::new();
    for meta in source.list(&credential::ListFilter::all()).await.unwrap() {
        exported.push(source.export(&meta.id).await.unwrap());
    }
    assert!(!format!("{exported:?}").contains("whsec"));
    let exports = source.audit().query(&AuditQuery::all().action(AuditAction::Export)).await;
    assert_eq!(exports.unwrap().len(), 3);

    let target = memory_manager_knowing_webhooks().await;
    for credential in &exported {
        target.import(credential).await.unwrap();
    }
    let ctx = target.context(Principal::named("reader"));
    assert_eq!(
        ctx.get::<Webhook>("hooks/in").await.unwrap().signing_key.expose_secret(),
        "whsec_v2_canary"
    );
    let history = target.history("hooks/in").await.unwrap();
    assert_eq!(history.iter().map(|info| info.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(history[0].state, VersionState::Deprecated);
    assert_eq!(target.load_dyn("hooks/draft").await.unwrap().state(), LifecycleState::Draft);
    let gone = target.load_dyn("hooks/gone").await.unwrap();
    assert_eq!(gone.state(), LifecycleState::Revoked);
    assert!(matches!(ctx.get::<Webhook>("hooks/gone").await, Err(Error::Revoked { .. })));

    let Err(Error::Conflict { .. }) = target.import(&exported[0]).await else {
        panic!("an import never replaces an existing credential");
    };
    let mut broken =
        exported.iter().find(|credential| credential.id == "hooks/in").unwrap().clone();
    broken.versions.reverse();
    broken.id = "hooks/broken".into();
    assert!(matches!(target.import(&broken).await, Err(Error::CorruptRecord { .. })));

    // Each version's fields, as JSON to read by hand; changed, they no longer match the payload
    // and the credential is refused rather than restored as it was.
    let mut edited =
        exported.iter().find(|credential| credential.id == "hooks/in").unwrap().clone();
    let fields = edited.versions[1].fields.as_ref().unwrap().expose_secret().to_owned();
    let shown: serde_json::Value = serde_json::from_str(&fields).unwrap();
    assert_eq!(shown["signing_key"], "whsec_v2_canary");
    edited.versions[1].fields = Some(fields.replace("whsec_v2_canary", "whsec_by_hand").into());
    edited.id = "hooks/edited".into();
    match target.import(&edited).await {
        Err(Error::CorruptRecord { reason }) => assert!(reason.contains("fields"), "{reason}"),
        other => panic!("an edited export was imported: {other:?}"),
    }
}

#[tokio::test]
async fn an_import_is_all_or_nothing() {
    let source = memory_manager_knowing_webhooks().await;
    for n in 0..5 {
        let created = source.create(&format!("hooks/{n}"), webhook("whsec_all_or_none")).await;
        created.unwrap().activate().await.unwrap();
    }
    let mut exported = Vec::new();
    for meta in source.list(&credential::ListFilter::all()).await.unwrap() {
        exported.push(source.export(&meta.id).await.unwrap());
    }
    let target = memory_manager_knowing_webhooks().await;
    let everything = || credential::ListFilter::all();

    // One credential that does not check out: nothing is written.
    let mut damaged = exported.clone();
    damaged[3].versions[0].version = 0;
    assert!(target.import_all(&damaged).await.is_err());
    assert!(target.list(&everything()).await.unwrap().is_empty());

    // One that fails only when written (its id exists): those written before it are taken back,
    // from the store and, as failed imports, from what the trail says happened.
    target.create("hooks/3", webhook("whsec_already_here")).await.unwrap();
    let clash = target.import_all(&exported).await.unwrap_err();
    assert!(matches!(clash, Error::Conflict { .. }), "{clash:?}");
    let left: Vec<String> =
        target.list(&everything()).await.unwrap().into_iter().map(|meta| meta.id).collect();
    assert_eq!(left, ["hooks/3"]);
    assert!(target.verify_against_trail().await.unwrap().is_clean());
    let withdrawn = target.audit().query(&AuditQuery::all().action(AuditAction::Import)).await;
    let withdrawn = withdrawn.unwrap();
    assert_eq!(withdrawn.len(), 3 * 2 + 2, "three announced and taken back, one refused");

    // And once the way is clear, all of them go in.
    let target = memory_manager_knowing_webhooks().await;
    assert_eq!(target.import_all(&exported).await.unwrap().len(), 5);
}
