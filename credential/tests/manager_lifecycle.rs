//! The manager end to end: lifecycle transitions, reads through a context, versions, revocation,
//! races, access policy and failure modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use credential::audit::{AuditAction, AuditOutcome, AuditQuery, AuditSink, MemoryAuditSink};
use credential::prelude::*;
use credential::store::Store;
use credential::{
    AccessPolicy, CacheConfig, Error, Grant, LifecycleState, ListFilter, VersionState,
};
use support::{ScratchDir, scratch_dir};

#[derive(Credential)]
#[credential(kind = "managed_github")]
struct GitHub {
    #[secret]
    #[credential(validate(non_empty))]
    token: SecretString,
    username: String,
    #[credential(expires_at)]
    expires: Option<DateTime<Utc>>,
}

#[derive(Credential)]
#[credential(kind = "other")]
struct Other {
    #[secret]
    key: SecretString,
}

fn github(token: &str) -> GitHub {
    GitHub { token: token.into(), username: "octocat".into(), expires: None }
}

/// A manager over a fresh SQLite file, and the directory that holds it (removed when dropped).
async fn sqlite_manager(name: &str) -> (ScratchDir, Manager) {
    let scratch = scratch_dir(name);
    let store = SqliteStore::open(scratch.join("credentials.db")).await.unwrap();
    let manager = Manager::builder()
        .store(store)
        .key_ring(KeyRing::generate().unwrap())
        .build()
        .await
        .unwrap();
    (scratch, manager)
}

fn reader(manager: &Manager) -> credential::Context {
    manager.context(Principal::new("workflow/ci", "action/checkout"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_commit_rollback_and_revoke_move_through_the_lifecycle() {
    let (_dir, manager) = sqlite_manager("lifecycle").await;
    let ctx = reader(&manager);

    let draft = manager.create("github/main", github("token-v1")).await.unwrap();
    assert!(matches!(ctx.get::<GitHub>("github/main").await, Err(Error::NotActive { .. })));
    let active = draft.activate().await.unwrap();
    assert_eq!(ctx.get::<GitHub>("github/main").await.unwrap().token.expose_secret(), "token-v1");

    // Rotating keeps serving the current version.
    let rotating = active.rotate(github("token-v2")).await.unwrap();
    assert_eq!(rotating.pending().token.expose_secret(), "token-v2");
    assert_eq!(ctx.get::<GitHub>("github/main").await.unwrap().token.expose_secret(), "token-v1");
    assert_eq!(
        ctx.get_version::<GitHub>("github/main", 2).await.unwrap().token.expose_secret(),
        "token-v2"
    );

    // Commit: the new version is served, the old one readable by version during the grace period.
    let active = rotating.commit().await.unwrap();
    assert_eq!(ctx.get::<GitHub>("github/main").await.unwrap().token.expose_secret(), "token-v2");
    assert_eq!(
        ctx.get_version::<GitHub>("github/main", 1).await.unwrap().token.expose_secret(),
        "token-v1"
    );

    // Rollback discards a pending version.
    let rotating = active.rotate(github("token-v3")).await.unwrap();
    let active = rotating.rollback().await.unwrap();
    assert_eq!(ctx.get::<GitHub>("github/main").await.unwrap().token.expose_secret(), "token-v2");
    assert!(matches!(
        ctx.get_version::<GitHub>("github/main", 3).await,
        Err(Error::VersionUnavailable { .. })
    ));

    // rollback_to restores an older version as a new current one.
    let active = active.rollback_to(1).await.unwrap();
    assert_eq!(active.version(), 4);
    assert_eq!(ctx.get::<GitHub>("github/main").await.unwrap().token.expose_secret(), "token-v1");

    let history = manager.history("github/main").await.unwrap();
    let states: Vec<_> = history.iter().map(|v| (v.version, v.state)).collect();
    assert_eq!(
        states,
        [
            (1, VersionState::Deprecated),
            (2, VersionState::Deprecated),
            (3, VersionState::Destroyed),
            (4, VersionState::Current)
        ]
    );

    // Revoke destroys every payload and keeps metadata and history.
    let revoked = active.revoke("leaked in CI log").await.unwrap();
    assert_eq!(revoked.record().meta.state, LifecycleState::Revoked);
    assert!(matches!(ctx.get::<GitHub>("github/main").await, Err(Error::Revoked { .. })));
    assert!(matches!(
        ctx.get_version::<GitHub>("github/main", 1).await,
        Err(Error::Revoked { .. })
    ));
    let history = manager.history("github/main").await.unwrap();
    assert_eq!(history.len(), 4);
    assert!(history.iter().all(|v| v.state == VersionState::Destroyed));
    let loaded = manager.load::<GitHub>("github/main").await.unwrap();
    assert_eq!(loaded.state(), LifecycleState::Revoked);
    assert!(matches!(loaded.into_active(), Err(Error::WrongState { .. })));

    let revokes =
        manager.audit().query(&AuditQuery::all().action(AuditAction::Revoke)).await.unwrap();
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0].reason.as_deref(), Some("leaked in CI log"));
}

#[tokio::test]
async fn revocation_removes_the_sealed_payloads_from_the_store() {
    let store = Arc::new(credential::MemoryStore::new());
    let manager = Manager::builder()
        .store(Arc::clone(&store))
        .key_ring(KeyRing::generate().unwrap())
        .build()
        .await
        .unwrap();
    let active = manager.create("api/key", github("t1")).await.unwrap().activate().await.unwrap();
    active
        .rotate(github("t2"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap()
        .revoke("rotated out")
        .await
        .unwrap();
    let record = store.get("default/api/key").await.unwrap().unwrap();
    assert!(record.versions.iter().all(|version| version.sealed.is_empty()));
}

#[tokio::test]
async fn load_returns_the_stored_state_through_one_checked_door() {
    let (_dir, manager) = sqlite_manager("load").await;
    manager.create("a", github("t")).await.unwrap();
    let loaded = manager.load::<GitHub>("a").await.unwrap();
    assert_eq!(loaded.state(), LifecycleState::Draft);
    let draft = loaded.into_draft().unwrap();
    let active = draft.activate().await.unwrap();
    let rotating = active.rotate(github("t2")).await.unwrap();
    drop(rotating);
    let rotating = manager.load::<GitHub>("a").await.unwrap().into_rotating().unwrap();
    assert_eq!(rotating.pending().token.expose_secret(), "t2");
    assert!(matches!(manager.load::<Other>("a").await, Err(Error::KindMismatch { .. })));
    assert!(matches!(manager.load::<GitHub>("missing").await, Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn a_stale_handle_loses_with_a_conflict_and_overwrites_nothing() {
    let (_dir, manager) = sqlite_manager("stale").await;
    let active = manager.create("a", github("t1")).await.unwrap().activate().await.unwrap();
    let stale = manager.load::<GitHub>("a").await.unwrap().into_active().unwrap();
    active.rotate(github("winner")).await.unwrap().commit().await.unwrap();
    assert!(matches!(stale.rotate(github("loser")).await, Err(Error::Conflict { .. })));
    let current = reader(&manager).get::<GitHub>("a").await.unwrap();
    assert_eq!(current.token.expose_secret(), "winner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_have_one_winner_per_round_and_no_gap_in_history() {
    let (_dir, manager) = sqlite_manager("races").await;
    manager.create("race", github("v1")).await.unwrap().activate().await.unwrap();
    for round in 0..5 {
        // Every task holds a handle at the same revision before any of them rotates.
        let mut actives = Vec::new();
        for _ in 0..8 {
            actives.push(manager.load::<GitHub>("race").await.unwrap().into_active().unwrap());
        }
        let handles: Vec<_> = actives
            .into_iter()
            .enumerate()
            .map(|(task, active)| {
                tokio::spawn(async move {
                    active.rotate(github(&format!("round{round}-task{task}"))).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut conflicts = 0;
        for handle in handles {
            match handle.await.unwrap() {
                Ok(rotating) => winners.push(rotating),
                Err(Error::Conflict { .. }) => conflicts += 1,
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        assert_eq!(conflicts, 7);
        winners.pop().unwrap().commit().await.unwrap();
    }
    let versions: Vec<u64> =
        manager.history("race").await.unwrap().iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=6).collect::<Vec<_>>());
}

#[tokio::test]
async fn denied_reads_are_audited_and_look_like_missing_ids() {
    let audit = Arc::new(MemoryAuditSink::new());
    let policy = AccessPolicy::new()
        .grant(Grant::admin("operator", "*"))
        .grant(Grant::read("workflow/ci:*", "github/*"));
    let manager = Manager::builder()
        .store(credential::MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .access_policy(policy)
        .audit(Arc::clone(&audit))
        .build()
        .await
        .unwrap();
    manager.create("github/main", github("t")).await.unwrap().activate().await.unwrap();
    manager.create("aws/prod", github("t")).await.unwrap().activate().await.unwrap();

    let allowed = reader(&manager);
    assert!(allowed.get::<GitHub>("github/main").await.is_ok());
    let existing = allowed.get::<GitHub>("aws/prod").await.unwrap_err();
    let missing = allowed.get::<GitHub>("aws/nothing-here").await.unwrap_err();
    assert!(matches!(existing, Error::AccessDenied { .. }));
    assert_eq!(
        existing.to_string().replace("aws/prod", "ID"),
        missing.to_string().replace("aws/nothing-here", "ID")
    );

    let stranger = manager.context(Principal::new("workflow/other", "action/x"));
    assert!(matches!(stranger.get::<GitHub>("github/main").await, Err(Error::AccessDenied { .. })));

    let denied = audit.query(&AuditQuery::all().outcome(AuditOutcome::Denied)).await.unwrap();
    assert_eq!(denied.len(), 3);
    assert!(denied.iter().all(|event| event.error.as_deref() == Some("access_denied")));
    let summary = audit.summary(&AuditQuery::all()).await.unwrap();
    assert_eq!(summary.failures, 3);
    assert!(summary.last_access.contains_key("github/main"));
}

#[tokio::test]
async fn kind_mismatch_expiry_and_cache_invalidation() {
    let manager = Manager::builder()
        .store(credential::MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .cache(CacheConfig::new(Duration::from_secs(60), 100))
        .build()
        .await
        .unwrap();
    let ctx = reader(&manager);
    let active = manager.create("a", github("one")).await.unwrap().activate().await.unwrap();
    assert_eq!(ctx.get::<GitHub>("a").await.unwrap().token.expose_secret(), "one");
    assert!(matches!(ctx.get::<Other>("a").await, Err(Error::KindMismatch { .. })));
    // A change through the manager invalidates the cached value at once.
    active.rotate(github("two")).await.unwrap().commit().await.unwrap();
    assert_eq!(ctx.get::<GitHub>("a").await.unwrap().token.expose_secret(), "two");

    // A value that expires while served is refused from then on, cached or not.
    let expires = Utc::now() + chrono::Duration::seconds(1);
    let expiring = GitHub { expires: Some(expires), ..github("old") };
    manager.create("expired", expiring).await.unwrap().activate().await.unwrap();
    assert_eq!(ctx.get::<GitHub>("expired").await.unwrap().token.expose_secret(), "old");
    support::wait_until_past(expires).await;
    assert!(matches!(ctx.get::<GitHub>("expired").await, Err(Error::Expired { .. })));
}

#[tokio::test]
async fn invalid_credentials_are_refused_by_every_transition() {
    let (_dir, manager) = sqlite_manager("invalid").await;
    assert!(matches!(manager.create("a", github("")).await, Err(Error::Validation(_))));
    let active = manager.create("a", github("ok")).await.unwrap().activate().await.unwrap();
    assert!(matches!(active.rotate(github("")).await, Err(Error::Validation(_))));
}

#[tokio::test]
async fn a_wrong_master_key_is_one_clear_error_when_the_manager_is_built() {
    let dir = scratch_dir("wrong-key");
    let store = SqliteStore::open(dir.join("credentials.db")).await.unwrap();
    let manager = Manager::builder()
        .store(store.clone())
        .key_ring(KeyRing::generate().unwrap())
        .build()
        .await
        .unwrap();
    manager.create("a", github("t")).await.unwrap();
    let wrong =
        Manager::builder().store(store).key_ring(KeyRing::generate().unwrap()).build().await;
    assert!(matches!(wrong, Err(Error::WrongMasterKey { .. })));
}

#[tokio::test]
async fn environments_namespace_ids_in_one_store() {
    let scratch = scratch_dir("environments");
    let store = SqliteStore::open(scratch.join("credentials.db")).await.unwrap();
    let ring = KeyRing::generate().unwrap();
    let staging = Manager::builder()
        .store(store.clone())
        .key_ring(ring.clone())
        .environment("staging")
        .build()
        .await
        .unwrap();
    let production = Manager::builder()
        .store(store.clone())
        .key_ring(ring)
        .environment("production")
        .build()
        .await
        .unwrap();
    staging.create("db", github("staging-token")).await.unwrap().activate().await.unwrap();
    production.create("db", github("production-token")).await.unwrap().activate().await.unwrap();
    assert_eq!(
        reader(&staging).get::<GitHub>("db").await.unwrap().token.expose_secret(),
        "staging-token"
    );
    assert_eq!(
        reader(&production).get::<GitHub>("db").await.unwrap().token.expose_secret(),
        "production-token"
    );
    let listed: Vec<_> =
        staging.list(&ListFilter::all()).await.unwrap().into_iter().map(|meta| meta.id).collect();
    assert_eq!(listed, ["db"]);
}

#[tokio::test]
async fn deprecated_versions_are_readable_only_during_the_grace_period() {
    let build = |grace| async move {
        Manager::builder()
            .store(credential::MemoryStore::new())
            .key_ring(KeyRing::generate().unwrap())
            .grace_period(grace)
            .build()
            .await
            .unwrap()
    };
    for (grace, readable) in [(Duration::from_secs(3600), true), (Duration::ZERO, false)] {
        let manager = build(grace).await;
        let active = manager.create("a", github("old")).await.unwrap().activate().await.unwrap();
        active.rotate(github("new")).await.unwrap().commit().await.unwrap();
        let old = reader(&manager).get_version::<GitHub>("a", 1).await;
        assert_eq!(old.is_ok(), readable, "grace {grace:?}");
        if !readable {
            assert!(matches!(old, Err(Error::VersionUnavailable { version: 1, .. })));
        }
    }
}

#[tokio::test]
async fn versions_beyond_the_limit_lose_their_payload_but_stay_in_history() {
    let manager = Manager::builder()
        .store(credential::MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .max_versions(2)
        .build()
        .await
        .unwrap();
    let mut active = manager.create("a", github("v1")).await.unwrap().activate().await.unwrap();
    for version in 2..=4 {
        active =
            active.rotate(github(&format!("v{version}"))).await.unwrap().commit().await.unwrap();
    }
    let states: Vec<_> = manager.history("a").await.unwrap().into_iter().map(|v| v.state).collect();
    assert_eq!(
        states,
        [
            VersionState::Destroyed,
            VersionState::Destroyed,
            VersionState::Deprecated,
            VersionState::Current
        ]
    );
    assert!(matches!(active.rollback_to(1).await, Err(Error::VersionUnavailable { .. })));
}

#[tokio::test]
async fn environments_may_use_their_own_master_keys_in_one_store() {
    let scratch = scratch_dir("environment-keys");
    let store = SqliteStore::open(scratch.join("credentials.db")).await.unwrap();
    let (staging_ring, production_ring) =
        (KeyRing::generate().unwrap(), KeyRing::generate().unwrap());
    let staging = Manager::builder()
        .store(store.clone())
        .key_ring(staging_ring)
        .environment("staging")
        .build()
        .await
        .unwrap();
    staging.create("db", github("staging")).await.unwrap().activate().await.unwrap();
    let production = Manager::builder()
        .store(store.clone())
        .key_ring(production_ring)
        .environment("production")
        .build()
        .await
        .unwrap();
    production.create("db", github("production")).await.unwrap().activate().await.unwrap();
    assert_eq!(
        reader(&production).get::<GitHub>("db").await.unwrap().token.expose_secret(),
        "production"
    );
    // The wrong ring for an environment is still caught at build time.
    let wrong = Manager::builder()
        .store(store)
        .key_ring(KeyRing::generate().unwrap())
        .environment("staging")
        .build()
        .await;
    assert!(matches!(wrong, Err(Error::WrongMasterKey { .. })));
}

/// A GitHub credential that expired an hour ago.
fn expired_github(token: &str) -> GitHub {
    GitHub { expires: Some(Utc::now() - chrono::Duration::hours(1)), ..github(token) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_version_is_refused_when_it_would_go_into_service() {
    let manager = Manager::for_testing().unwrap();
    let expired = |result: credential::Result<_>| matches!(result, Err(Error::Expired { .. }));

    // Activation, typed and untyped: the draft stays a draft.
    let draft = manager.create("gh/stale", expired_github("ghp_stale")).await.unwrap();
    assert!(expired(draft.activate().await.map(drop)));
    let untyped = manager.load_dyn("gh/stale").await.unwrap();
    assert_eq!(untyped.state(), LifecycleState::Draft);
    assert!(expired(untyped.activate().await.map(drop)));

    // Commit, typed and untyped: the rotation stays pending, the current version served.
    let active = manager.create("gh/main", github("ghp_first")).await.unwrap();
    let rotating =
        active.activate().await.unwrap().rotate(expired_github("ghp_stale")).await.unwrap();
    assert!(expired(rotating.commit().await.map(drop)));
    let untyped = manager.load_dyn("gh/main").await.unwrap();
    assert_eq!(untyped.state(), LifecycleState::Rotating);
    assert!(expired(untyped.commit().await.map(drop)));
    let current = reader(&manager).get::<GitHub>("gh/main").await.unwrap();
    assert_eq!(current.token.expose_secret(), "ghp_first");

    // Restore of an older version that has expired since, typed and untyped.
    let expires = Utc::now() + chrono::Duration::seconds(2);
    let first = GitHub { expires: Some(expires), ..github("ghp_one") };
    let active = manager.create("gh/restore", first).await.unwrap().activate().await.unwrap();
    let active = active.rotate(github("ghp_two")).await.unwrap().commit().await.unwrap();
    support::wait_until_past(expires).await;
    assert!(expired(active.rollback_to(1).await.map(drop)));
    let untyped = manager.load_dyn("gh/restore").await.unwrap();
    assert!(expired(untyped.rollback_to(1).await.map(drop)));
    let current = reader(&manager).get::<GitHub>("gh/restore").await.unwrap();
    assert_eq!(current.token.expose_secret(), "ghp_two");
}

/// Hands out a fresh token valid for an hour.
struct FreshToken;

#[async_trait::async_trait]
impl credential::Refresher for FreshToken {
    type Credential = GitHub;

    async fn refresh(
        &self,
        current: &GitHub,
        _context: &credential::RefreshContext,
    ) -> Result<GitHub, credential::RefreshError> {
        let expires = Some(Utc::now() + chrono::Duration::hours(1));
        Ok(GitHub { token: "ghp_fresh".into(), username: current.username.clone(), expires })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_credential_that_a_refresher_renews_may_go_into_service() {
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .refresher(FreshToken)
        .build()
        .await
        .unwrap();
    let draft = manager.create("gh/renewed", expired_github("ghp_stale")).await.unwrap();
    draft.activate().await.unwrap();
    let served = reader(&manager).get::<GitHub>("gh/renewed").await.unwrap();
    assert_eq!(served.token.expose_secret(), "ghp_fresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grant_removed_while_actions_run_is_refused_by_every_read_that_starts_after() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let audit = Arc::new(MemoryAuditSink::new());
    let granted = AccessPolicy::from_json(
        r#"{ "grants": [
            { "permission": "admin", "principal": "operator", "credential": "*" },
            { "permission": "read", "principal": "workflow/ci:*", "credential": "github/*" }
        ] }"#,
    )
    .unwrap();
    let manager = Manager::builder()
        .store(credential::MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .access_policy(granted.clone())
        .audit(Arc::clone(&audit))
        .build()
        .await
        .unwrap();
    manager.create("github/main", github("t")).await.unwrap().activate().await.unwrap();

    // Eight actions read in a loop, from the cache after their first read. Each says when it
    // has read once; a read that starts after the swap has returned must be refused, and none
    // may be refused before the swap began.
    let (swapping, swapped) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (read_once, mut reads_seen) = tokio::sync::mpsc::unbounded_channel();
    let actions: Vec<_> = (0..8)
        .map(|n| {
            let ctx = manager.context(Principal::new("workflow/ci", &format!("action/{n}")));
            let (swapping, swapped) = (Arc::clone(&swapping), Arc::clone(&swapped));
            let read_once = read_once.clone();
            tokio::spawn(async move {
                let mut said = false;
                loop {
                    let after_swap = swapped.load(Ordering::SeqCst);
                    match ctx.get::<GitHub>("github/main").await {
                        Ok(_) => assert!(!after_swap, "a removed grant let a read through"),
                        Err(Error::AccessDenied { .. }) => {
                            assert!(swapping.load(Ordering::SeqCst), "refused before the swap");
                            return;
                        }
                        Err(error) => panic!("{error:?}"),
                    }
                    if !said {
                        said = true;
                        read_once.send(()).unwrap();
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for _ in 0..8 {
        reads_seen.recv().await.unwrap();
    }
    let without = AccessPolicy::new().grant(Grant::admin("operator", "*"));
    swapping.store(true, Ordering::SeqCst);
    manager.set_access_policy(Some(without.clone())).await.unwrap();
    swapped.store(true, Ordering::SeqCst);
    for action in actions {
        action.await.unwrap();
    }
    assert_eq!(manager.access_policy(), Some(without));

    // The change is in the trail, with who made it.
    let changes = audit.query(&AuditQuery::all().action(AuditAction::SetPolicy)).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!((&*changes[0].credential, &*changes[0].principal), ("*", "operator"));
    assert_eq!(changes[0].reason.as_deref(), Some("1 grants"));
    // And given back, the grant works again at once.
    manager.set_access_policy(Some(granted)).await.unwrap();
    assert!(reader(&manager).get::<GitHub>("github/main").await.is_ok());
}

#[test]
fn a_policy_file_that_does_not_read_says_where_and_why() {
    let cases = [
        ("not json", "expected ident"),
        (r#"{ "grant": [] }"#, "unknown field `grant`"),
        (
            r#"{ "grants": [ { "permission": "reed", "principal": "a", "credential": "b" } ] }"#,
            "unknown variant `reed`",
        ),
        (r#"{ "grants": [ { "permission": "read", "principal": "a" } ] }"#, "missing field"),
        (
            r#"{ "grants": [ { "permission": "read", "principal": "a", "credential": "b",
                "until": "next tuesday" } ] }"#,
            "line 2",
        ),
        (
            r#"{ "grants": [ { "permission": "read", "principal": "", "credential": "b" } ] }"#,
            "grant 1: an empty pattern",
        ),
    ];
    for (json, says) in cases {
        let error = AccessPolicy::from_json(json).unwrap_err();
        assert!(matches!(error, Error::InvalidPolicy { .. }), "{error:?}");
        assert!(error.to_string().contains(says), "{json}: {error}");
        assert_eq!(error.code(), "invalid_policy");
    }
    let policy = AccessPolicy::new()
        .grant(Grant::read("workflow/*", "github/*").in_environment("production"))
        .grant(Grant::admin("ops", "*").until("2030-01-01T00:00:00Z".parse().unwrap()));
    assert_eq!(AccessPolicy::from_json(&policy.to_json()).unwrap(), policy);
}
