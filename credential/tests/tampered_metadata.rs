//! What a store says about how a credential is served is authenticated under the master key: a
//! writer of the store without it (editing a database row or a record file) cannot make a
//! manager serve another version, or serve a revoked or expired credential.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support;

use std::sync::Arc;

use credential::audit::TrailAnchor;
use credential::kinds::ApiKey;
use credential::store::{FileStore, Precondition, Record, Store};
use credential::{
    CacheConfig, Error, ExposeSecret, KeyRing, LifecycleState, Manager, Principal, SqliteStore,
    VersionState,
};
use support::scratch_dir;

/// `api/key` rotated once through a manager over `store`: version 1 deprecated, 2 current.
async fn rotated_once(store: Arc<dyn Store>, ring: &KeyRing) {
    let manager = manager_over(store, ring).await;
    let draft = manager.create("api/key", ApiKey::new("sk_before_rotation".into())).await.unwrap();
    let active = draft.activate().await.unwrap();
    active.rotate(ApiKey::new("sk_after_rotation".into())).await.unwrap().commit().await.unwrap();
}

async fn manager_over(store: Arc<dyn Store>, ring: &KeyRing) -> Manager {
    Manager::builder()
        .store(store)
        .key_ring(ring.clone())
        .cache(CacheConfig::disabled())
        .build()
        .await
        .unwrap()
}

/// Rewrites `api/key` in `store` as `edit` makes it, keeping its tag, as a writer of the store
/// without the master key would.
async fn edit_behind_the_managers_back(store: &dyn Store, edit: impl FnOnce(&mut Record)) {
    let mut record = store.get("default/api/key").await.unwrap().unwrap();
    let revision = record.meta.revision;
    edit(&mut record);
    store.put(record, Precondition::Revision(revision)).await.unwrap();
}

async fn read(manager: &Manager) -> credential::Result<String> {
    let ctx = manager.context(Principal::new("workflow/a", "action/read"));
    Ok(ctx.get::<ApiKey>("api/key").await?.key.expose_secret().to_owned())
}

/// An edit a store's writer might try, and what it does.
type Edit = (&'static str, Box<dyn Fn(&mut Record)>);

/// The edits a store's writer might try, each on a fresh copy of the rotated record.
fn edits() -> Vec<Edit> {
    vec![
        (
            "swap the current and deprecated versions",
            Box::new(|record: &mut Record| {
                for version in &mut record.versions {
                    version.state = match version.state {
                        VersionState::Current => VersionState::Deprecated,
                        _ => VersionState::Current,
                    };
                }
            }),
        ),
        (
            "set the record's state back to draft",
            Box::new(|record: &mut Record| record.meta.state = LifecycleState::Draft),
        ),
        (
            "push the expiry out",
            Box::new(|record: &mut Record| {
                record.meta.expires_at = Some(chrono::Utc::now() + chrono::Duration::days(9_000));
            }),
        ),
        (
            "set a reauthentication mark",
            Box::new(|record: &mut Record| record.meta.refresh.reauth_required = true),
        ),
        ("renumber a version", Box::new(|record: &mut Record| record.versions[0].version = 7)),
        (
            "change the kind",
            Box::new(|record: &mut Record| record.meta.kind = "basic_auth".to_owned()),
        ),
        ("flip a bit of the tag", Box::new(|record: &mut Record| record.meta.tag[5] ^= 1)),
        (
            "name an earlier line of the audit trail, to hide a cut",
            Box::new(|record: &mut Record| {
                record.meta.trail = Some(TrailAnchor::new(&"0".repeat(64), 1, &"0".repeat(64)));
            }),
        ),
    ]
}

/// Every edit in [`edits`], on `store` made afresh by `open` each time, is refused.
async fn every_edit_is_refused<F, S>(open: impl Fn(usize) -> F)
where
    F: Future<Output = S>,
    S: Store,
{
    for (round, (what, edit)) in edits().into_iter().enumerate() {
        let store: Arc<dyn Store> = Arc::new(open(round).await);
        let ring = KeyRing::generate().unwrap();
        rotated_once(Arc::clone(&store), &ring).await;
        let manager = manager_over(Arc::clone(&store), &ring).await;
        assert_eq!(read(&manager).await.unwrap(), "sk_after_rotation", "{what}: before");
        edit_behind_the_managers_back(store.as_ref(), edit).await;
        let read = read(&manager).await;
        assert!(matches!(read, Err(Error::CorruptRecord { .. })), "{what}: {read:?}");
        let loaded = manager.load_dyn("api/key").await;
        assert!(matches!(loaded, Err(Error::CorruptRecord { .. })), "{what}: load {loaded:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_sqlite_row_is_refused() {
    let dir = scratch_dir("tampered-sqlite");
    every_edit_is_refused(|round| {
        let path = dir.join(format!("round-{round}.db"));
        async move { SqliteStore::open(path).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_record_file_is_refused() {
    let dir = scratch_dir("tampered-files");
    every_edit_is_refused(|round| {
        let path = dir.join(format!("round-{round}"));
        async move { FileStore::open(path).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_postgres_row_is_refused() {
    let schemas: Option<Vec<_>> = (0..edits().len())
        .map(|round| support::PgSchema::create(&format!("tampered_{round}")))
        .collect();
    let Some(schemas) = schemas else { return };
    every_edit_is_refused(|round| {
        let url = schemas[round].url.clone();
        async move { credential::store::PostgresStore::connect(&url).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_before_tags_are_served_until_a_rekey_tags_them() {
    let dir = scratch_dir("untagged");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("db")).await.unwrap());
    let ring = KeyRing::generate().unwrap();
    rotated_once(Arc::clone(&store), &ring).await;
    // As a build from before tags wrote it.
    edit_behind_the_managers_back(store.as_ref(), |record| record.meta.tag.clear()).await;
    let manager = manager_over(Arc::clone(&store), &ring).await;
    assert_eq!(read(&manager).await.unwrap(), "sk_after_rotation");
    let untagged = store.get("default/api/key").await.unwrap().unwrap();
    assert_eq!(credential::hazmat::verify_tag(&ring, &untagged).unwrap(), None);

    let report = manager.rekey(|_| {}).await.unwrap();
    assert_eq!(report.resealed, 1, "the untagged record was rewritten");
    let tagged = store.get("default/api/key").await.unwrap().unwrap();
    assert_eq!(credential::hazmat::verify_tag(&ring, &tagged).unwrap(), Some(true));
    assert_eq!(read(&manager).await.unwrap(), "sk_after_rotation");
    assert_eq!(manager.rekey(|_| {}).await.unwrap().resealed, 0, "nothing left to do");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_requires_tags_refuses_a_record_whose_tag_was_stripped() {
    let dir = scratch_dir("stripped");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("db")).await.unwrap());
    let ring = KeyRing::generate().unwrap();
    rotated_once(Arc::clone(&store), &ring).await;
    edit_behind_the_managers_back(store.as_ref(), |record| {
        record.meta.tag.clear();
        for version in &mut record.versions {
            version.state = match version.state {
                VersionState::Current => VersionState::Deprecated,
                _ => VersionState::Current,
            };
        }
    })
    .await;
    let strict = Manager::builder()
        .store(Arc::clone(&store))
        .key_ring(ring.clone())
        .require_tags()
        .build()
        .await
        .unwrap();
    assert!(matches!(read(&strict).await, Err(Error::CorruptRecord { .. })));
    // Without it, the record passes as one written before tags: what `require_tags` closes.
    assert_eq!(read(&manager_over(store, &ring).await).await.unwrap(), "sk_before_rotation");
}
