//! Restores detected: a record put back from an older copy of the store carries its own
//! authentic tag, but the audit trail knows the revision of every change, so the manager names
//! records behind it and revoked credentials readable again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support;

use std::path::{Path, PathBuf};

use credential::kinds::ApiKey;
use credential::store::FileStore;
use credential::{CacheConfig, ExposeSecret, KeyRing, Manager, Principal};
use support::scratch_dir;

/// The file a file store keeps `id` of the default environment in.
fn record_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("default~{}.rec", id.replace('/', "~")))
}

/// A copy of `id`'s record file, as a backup would take it.
fn back_up(dir: &Path, id: &str) -> Vec<u8> {
    std::fs::read(record_file(dir, id)).unwrap()
}

/// Puts `copy` back as `id`'s record file, as restoring the backup would.
fn restore(dir: &Path, id: &str, copy: &[u8]) {
    std::fs::write(record_file(dir, id), copy).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_put_back_from_a_backup_and_a_revoke_undone_are_named() {
    let dir = scratch_dir("restores");
    let manager = Manager::builder()
        .store(FileStore::open(&*dir).await.unwrap())
        .key_ring(KeyRing::generate().unwrap())
        .cache(CacheConfig::disabled())
        .build()
        .await
        .unwrap();
    let key = |text: &str| ApiKey::new(text.into());
    for id in ["api/kept", "api/rotated", "api/revoked"] {
        manager.create(id, key("sk_first")).await.unwrap().activate().await.unwrap();
    }
    assert!(manager.verify_against_trail().await.unwrap().is_clean());

    let (before_rotation, before_revoke) =
        (back_up(&dir, "api/rotated"), back_up(&dir, "api/revoked"));
    let rotated = manager.load::<ApiKey>("api/rotated").await.unwrap().into_active().unwrap();
    rotated.rotate(key("sk_second")).await.unwrap().commit().await.unwrap();
    let revoked = manager.load::<ApiKey>("api/revoked").await.unwrap().into_active().unwrap();
    revoked.revoke("leaked").await.unwrap();
    restore(&dir, "api/rotated", &before_rotation);
    restore(&dir, "api/revoked", &before_revoke);

    let check = manager.verify_against_trail().await.unwrap();
    assert_eq!(check.credentials, 3);
    assert_eq!(check.behind, ["api/revoked", "api/rotated"]);
    assert_eq!(check.revoked_readable, ["api/revoked"]);
    // What the check is for: nothing in the restored records stops them being served.
    let ctx = manager.context(Principal::named("reader"));
    let served = ctx.get::<ApiKey>("api/revoked").await.unwrap();
    assert_eq!(served.key.expose_secret(), "sk_first");

    // Revoked again, the credential no longer counts as readable; the older copy of the rotated
    // one is rotated past.
    let again = manager.load::<ApiKey>("api/revoked").await.unwrap().into_active().unwrap();
    again.revoke("restored by mistake").await.unwrap();
    let rotated = manager.load::<ApiKey>("api/rotated").await.unwrap().into_active().unwrap();
    rotated.rotate(key("sk_third")).await.unwrap().commit().await.unwrap();
    let check = manager.verify_against_trail().await.unwrap();
    assert!(check.is_clean(), "{check:?}");
}
