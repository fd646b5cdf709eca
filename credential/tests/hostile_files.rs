//! Hostile files where the library expects its own: a FIFO, a socket, a device or a link in place
//! of a key file, a record, a store's bookkeeping files, its directory or database. Each is an
//! error at once, never a hang (the bound below only catches a regression that would otherwise
//! hang the suite).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support;

use std::future::Future;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use credential::crypto::MasterKey;
use credential::kinds::ApiKey;
use credential::store::{FileStore, Store};
use credential::{CacheConfig, KeyRing, Manager, Principal, SqliteStore};
use support::scratch_dir;

/// Far longer than any of these calls takes; a call still running then has hung.
const HANG: Duration = Duration::from_secs(20);

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// `call`'s outcome, which must come before [`HANG`].
async fn without_hanging<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, call).await.unwrap_or_else(|_| panic!("{what} hung"))
}

/// `call`'s outcome on a thread of its own, which must come before [`HANG`].
fn without_hanging_blocking<T: Send + 'static>(
    what: &str,
    call: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(call());
    });
    outcome.recv_timeout(HANG).unwrap_or_else(|_| panic!("{what} hung"))
}

#[test]
fn a_key_file_that_is_a_fifo_socket_or_device_fails_at_once() {
    let dir = scratch_dir("hostile-key-files");
    let fifo = dir.join("master.key");
    mkfifo(&fifo);
    let socket = dir.join("socket.key");
    let _listener = UnixListener::bind(&socket).unwrap();
    for path in [fifo.clone(), socket, "/dev/zero".into(), "/dev/null".into()] {
        let shown = path.display().to_string();
        let opened = without_hanging_blocking(&shown, move || {
            (MasterKey::from_file(&path).is_err(), KeyRing::from_file(&path).is_err())
        });
        assert_eq!(opened, (true, true), "{shown}");
    }
    let settings = without_hanging_blocking("a FIFO of settings", move || {
        credential::crypto::read_key_file(&fifo, 4096).map(drop)
    });
    let error = settings.unwrap_err().to_string();
    assert!(error.contains("is a FIFO"), "{error}");
    // A link to a real key file is followed, as an operator may link one in.
    let key = MasterKey::generate().unwrap();
    key.write_file(dir.join("real.key")).unwrap();
    std::os::unix::fs::symlink(dir.join("real.key"), dir.join("linked.key")).unwrap();
    assert_eq!(MasterKey::from_file(dir.join("linked.key")).unwrap().id(), key.id());
}

/// A file store in `dir` holding one active API key, `api/key`, and a manager over it that
/// does not cache (every read goes to the file).
async fn file_store_with_a_key(dir: &Path) -> (FileStore, Manager) {
    let store = FileStore::open(dir).await.unwrap();
    let manager = Manager::builder()
        .store(store.clone())
        .key_ring(KeyRing::generate().unwrap())
        .cache(CacheConfig::disabled())
        .build()
        .await
        .unwrap();
    let draft = manager.create("api/key", ApiKey::new("sk_live_hostile".into())).await.unwrap();
    draft.activate().await.unwrap();
    (store, manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_replaced_by_a_fifo_or_a_link_fails_the_read_at_once() {
    let dir = scratch_dir("hostile-records");
    let (store, manager) = file_store_with_a_key(&dir).await;
    let record = dir.join("default~api~key.rec");
    let ctx = manager.context(Principal::new("workflow/a", "action/read"));

    mkfifo(&record);
    let read = without_hanging("a record that is a FIFO", store.get("default/api/key")).await;
    let error = read.unwrap_err().to_string();
    assert!(error.contains("is a FIFO"), "{error}");
    let served = without_hanging("a read through the manager", ctx.get::<ApiKey>("api/key")).await;
    assert!(served.is_err());
    let listed = without_hanging("listing", store.list(&credential::ListFilter::all())).await;
    assert!(listed.is_err(), "a FIFO among the records is reported, not waited on");

    // A link to another record is not followed either.
    std::fs::remove_file(&record).unwrap();
    let elsewhere = dir.join("elsewhere");
    std::fs::write(&elsewhere, b"not a record").unwrap();
    std::os::unix::fs::symlink(&elsewhere, &record).unwrap();
    assert!(without_hanging("a linked record", store.get("default/api/key")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stores_bookkeeping_files_replaced_by_fifos_fail_or_recover_at_once() {
    // The lock: writes fail at once.
    let dir = scratch_dir("hostile-lock");
    let (_store, manager) = file_store_with_a_key(&dir).await;
    mkfifo(&dir.join(".lock"));
    let created = manager.create("api/other", ApiKey::new("sk_other".into()));
    assert!(without_hanging("a write under a FIFO lock", created).await.is_err());

    // The change log: a write whose change cannot be logged does not happen.
    let dir = scratch_dir("hostile-changes");
    let (store, manager) = file_store_with_a_key(&dir).await;
    mkfifo(&dir.join(".changes"));
    let created = manager.create("api/other", ApiKey::new("sk_other".into()));
    assert!(without_hanging("a write with a FIFO log", created).await.is_err());
    let other = without_hanging("reading it back", store.get("default/api/other")).await;
    assert!(other.unwrap().is_none(), "nothing was written");

    // The key counts: untrusted, counted again from the records and written anew.
    let dir = scratch_dir("hostile-keys");
    let (_store, manager) = file_store_with_a_key(&dir).await;
    drop(manager);
    mkfifo(&dir.join(".keys"));
    let reopened = without_hanging("reopening with a FIFO of counts", FileStore::open(&dir)).await;
    reopened.unwrap();
    assert!(std::fs::symlink_metadata(dir.join(".keys")).unwrap().is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_directory_or_database_that_is_a_fifo_fails_to_open_at_once() {
    let dir = scratch_dir("hostile-stores");
    let fifo = dir.join("store");
    mkfifo(&fifo);
    let opened = without_hanging("a FIFO as the store directory", FileStore::open(&fifo)).await;
    assert!(opened.is_err());
    let opened = without_hanging("a FIFO as the database", SqliteStore::open(&fifo)).await;
    let error = opened.unwrap_err().to_string();
    assert!(error.contains("is a FIFO"), "{error}");
    let opened = without_hanging("a device as the database", SqliteStore::open("/dev/zero")).await;
    assert!(opened.is_err());
}
