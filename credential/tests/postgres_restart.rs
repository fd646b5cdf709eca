//! The PostgreSQL server restarts while a manager that caches for an hour reads in a loop: reads
//! fail while it is down (never served from a cache nobody vouches for), and once it is back a
//! change made elsewhere is seen within 100 ms, never the value before it.
//!
//! On a server of its own: the restart would disturb the other tests on the shared one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use crate::support;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use credential::crypto::MasterKey;
use credential::kinds::ApiKey;
use credential::store::PostgresStore;
use credential::{CacheConfig, ExposeSecret, KeyRing, Manager, Principal};
use support::OwnService;

const BOUND: Duration = Duration::from_millis(100);

fn unix_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

async fn manager(url: &str, key: &MasterKey) -> Manager {
    Manager::builder()
        .store(PostgresStore::connect(url).await.unwrap())
        .key_ring(KeyRing::new(key.clone()))
        .cache(CacheConfig::new(Duration::from_secs(3600), 1_000))
        .build()
        .await
        .unwrap()
}

/// What one read of the loop saw: when it started, and the key it got or the error's code.
type Observation = (u128, Result<String, &'static str>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_surfaces_errors_then_fresh_values_never_a_stale_one() {
    let Some(server) = OwnService::postgres("restart") else { return };
    let key = MasterKey::generate().unwrap();
    let writer = manager(&server.url, &key).await;
    let reader = manager(&server.url, &key).await;
    writer
        .create("restart/api", ApiKey::new("sk_before".into()))
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();

    let seen: Arc<Mutex<Vec<Observation>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let reading = {
        let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
        tokio::spawn(async move {
            let ctx = reader.context(Principal::named("reader"));
            while !stop.load(Ordering::Acquire) {
                let started = unix_nanos();
                let got = match ctx.get::<ApiKey>("restart/api").await {
                    Ok(key) => Ok(key.key.expose_secret().to_owned()),
                    Err(error) => Err(error.code()),
                };
                seen.lock().unwrap().push((started, got));
                tokio::task::yield_now().await;
            }
        })
    };
    let observed = |seen: &Mutex<Vec<Observation>>| seen.lock().unwrap().len();
    while observed(&seen) < 100 {
        tokio::task::yield_now().await;
    }

    let restart = server.state.join("restart");
    let status =
        tokio::task::spawn_blocking(move || std::process::Command::new(restart).status().unwrap())
            .await
            .unwrap();
    assert!(status.success(), "the server did not restart");

    // Another manager changes the credential once the server is back; its pooled connections
    // died with the old server, so the first tries may fail.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rotating = loop {
        let rotated = match writer.load::<ApiKey>("restart/api").await {
            Ok(loaded) => {
                loaded.into_active().unwrap().rotate(ApiKey::new("sk_after".into())).await
            }
            Err(error) => Err(error),
        };
        match rotated {
            Ok(rotating) => break rotating,
            Err(error) if error.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("rotate after the restart: {error}"),
        }
    };
    rotating.commit().await.unwrap();
    let committed = unix_nanos();

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fresh_reads = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(started, got)| {
                *started > committed + BOUND.as_nanos() && got.as_deref() == Ok("sk_after")
            })
            .count();
        if fresh_reads >= 100 {
            break;
        }
        assert!(Instant::now() < deadline, "the new value was never served");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Release);
    reading.await.unwrap();

    let seen = seen.lock().unwrap();
    let errors = seen.iter().filter(|(_, got)| got.is_err()).count();
    let stale = seen
        .iter()
        .filter(|(started, got)| {
            *started > committed + BOUND.as_nanos() && got.as_deref() == Ok("sk_before")
        })
        .count();
    println!("{} reads, {errors} failed while the server was away, {stale} stale", seen.len());
    assert!(errors > 0, "no read failed while the server was down: served from the cache");
    assert!(
        seen.iter().filter_map(|(_, got)| got.as_ref().err()).all(|code| *code == "storage"),
        "reads failed for another reason than the server being away"
    );
    assert_eq!(stale, 0, "the old value was served after the change");
}
