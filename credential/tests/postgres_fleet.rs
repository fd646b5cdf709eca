//! A fleet of workers on one PostgreSQL server with its default limit (100 connections): worker
//! processes, each running several managers with the cache off and the audit trail in the
//! database, read and write at once, first straight to the server, then through PgBouncer in
//! transaction mode (with the change feed listening on the server directly).
//!
//! - Nothing fails: no call waits in vain for a connection.
//! - The server's connections (counted in `pg_stat_activity` every few milliseconds) peak under
//!   50, and within the sizing rule: each worker holds one pool (4) and one listener however many
//!   managers it runs; behind the pooler, the pooler's 10 and one listener per worker.
//! - Then every worker's caching managers hold a credential in their caches and read it in a
//!   loop while the parent revokes it: each manager is refused, and no read that started more
//!   than 100 ms after the revoke returned was served.
//!
//! The workers are this test binary re-run as children (`--ignored --exact fleet_worker`). With
//! `CREDENTIAL_STRESS=1`, 10 workers × 10 managers (100 managers); the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use crate::support;

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use credential::audit::PostgresAuditSink;
use credential::crypto::MasterKey;
use credential::kinds::ApiKey;
use credential::store::PostgresStore;
use credential::{CacheConfig, KeyRing, Manager, Principal};
use support::conversation::{Conversation, TAG, child_test};
use support::{OwnService, scratch_dir};

/// What a fleet of 8 workers may not reach, with PostgreSQL's default `max_connections` of 100.
const PEAK_BOUND: usize = 50;
/// The server connections `.ci/pgbouncer.sh` lets its pooler keep (`default_pool_size`).
const PGBOUNCER_SERVER_CONNECTIONS: usize = 10;
const REVOKE_BOUND: Duration = Duration::from_millis(100);
/// Reads each of a manager's tasks makes, and tasks per manager: enough that every pool is
/// saturated (64 tasks on 4 connections per worker) for the whole load phase.
const READS_PER_TASK: usize = 20;
const TASKS_PER_MANAGER: usize = 8;
/// Rotations (each a load, a rotate and a commit, audited) per manager during the reads.
const WRITES_PER_MANAGER: usize = 3;
/// Shared credentials every manager reads.
const SHARED: usize = 8;
/// How long a worker may take before it gives up (seconds are enough on a loaded machine).
const WORKER_DEADLINE: Duration = Duration::from_secs(180);

fn unix_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// Workers and managers per worker: 8 × 8, or 10 × 10 for the long run.
fn fleet_size() -> (usize, usize) {
    let size = support::stress::count(8, 10);
    (size, size)
}

/// A store for the worker: straight to the server, or through the pooler with the listener on
/// the server.
async fn connect(url: &str, direct: Option<&str>) -> PostgresStore {
    let builder = PostgresStore::builder(url);
    let builder = match direct {
        Some(direct) => builder.behind_pooler(direct),
        None => builder,
    };
    builder.connect().await.unwrap()
}

/// One worker: `FLEET_MANAGERS` managers with the cache off (each its own store handle and
/// audit sink) read and write; then as many caching managers read `target` until refused.
/// Reports `LOADED <reads> <writes> <failures> <first failure>`, waits for `GO`, says `READING`
/// once every caching manager has read once, and reports `SEEN <last success start> <refused at>
/// <error code>` for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the tests below"]
async fn fleet_worker() {
    let Ok(url) = std::env::var("FLEET_URL") else { return };
    let direct = std::env::var("FLEET_DIRECT").ok();
    let run = std::env::var("FLEET_RUN").unwrap();
    let worker: usize = std::env::var("FLEET_WORKER").unwrap().parse().unwrap();
    let managers: usize = std::env::var("FLEET_MANAGERS").unwrap().parse().unwrap();
    let ring = KeyRing::from_file(std::env::var("FLEET_KEY").unwrap()).unwrap();
    // A worker that hangs fails the test (the parent reads its end) instead of holding CI.
    std::thread::spawn(|| {
        std::thread::sleep(WORKER_DEADLINE);
        eprintln!("the worker did not finish within {WORKER_DEADLINE:?}");
        std::process::exit(3);
    });

    let mut loaders = Vec::new();
    let mut cachers = Vec::new();
    for _ in 0..managers {
        let store = connect(&url, direct.as_deref()).await;
        let audit = PostgresAuditSink::new(&store).unwrap();
        let loader = Manager::builder()
            .store(store)
            .key_ring(ring.clone())
            .audit(audit)
            .cache(CacheConfig::disabled())
            .build()
            .await
            .unwrap();
        loaders.push(loader);
        let cacher = Manager::builder()
            .store(connect(&url, direct.as_deref()).await)
            .key_ring(ring.clone())
            .cache(CacheConfig::new(Duration::from_secs(3600), 100))
            .build()
            .await
            .unwrap();
        cachers.push(cacher);
    }

    let reads = Arc::new(AtomicUsize::new(0));
    let writes = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for (index, manager) in loaders.iter().enumerate() {
        let own = format!("fleet/{run}/w{worker}-m{index}");
        for task in 0..TASKS_PER_MANAGER {
            let (manager, own, run) = (manager.clone(), own.clone(), run.clone());
            let (reads, writes, failures) =
                (Arc::clone(&reads), Arc::clone(&writes), Arc::clone(&failures));
            tasks.push(tokio::spawn(async move {
                let ctx = manager.context(Principal::named("fleet"));
                if task == 0 {
                    let created = async {
                        manager.create(&own, ApiKey::new("sk_0".into())).await?.activate().await
                    };
                    match created.await {
                        Ok(_) => writes.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            failures.lock().unwrap().push(format!("create: {error}"));
                            return;
                        }
                    };
                }
                for read in 0..READS_PER_TASK {
                    let id = format!("fleet/{run}/shared-{}", (task + read) % SHARED);
                    match ctx.get::<ApiKey>(&id).await {
                        Ok(_) => reads.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            failures.lock().unwrap().push(format!("read: {error}"));
                            continue;
                        }
                    };
                    if task == 0 && read % (READS_PER_TASK / WRITES_PER_MANAGER) == 0 {
                        let rotated = async {
                            let active = manager.load::<ApiKey>(&own).await?.into_active()?;
                            let next = ApiKey::new(format!("sk_{read}").into());
                            active.rotate(next).await?.commit().await
                        };
                        match rotated.await {
                            Ok(_) => writes.fetch_add(1, Ordering::Relaxed),
                            Err(error) => {
                                failures.lock().unwrap().push(format!("rotate: {error}"));
                                0
                            }
                        };
                    }
                }
            }));
        }
    }
    let target = format!("fleet/{run}/target");
    for cacher in &cachers {
        cacher.context(Principal::named("fleet")).get::<ApiKey>(&target).await.unwrap();
    }
    for task in tasks {
        task.await.unwrap();
    }
    for loader in &loaders {
        loader.shutdown().await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    println!(
        "{TAG}LOADED {} {} {} {}",
        reads.load(Ordering::Relaxed),
        writes.load(Ordering::Relaxed),
        failures.len(),
        failures.first().map_or("-", String::as_str).replace(' ', "_"),
    );

    // The caching managers read the target until refused, each on a task of its own.
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).unwrap();
    assert_eq!(go.trim(), "GO");
    // Once each has read once, the worker tells the parent, which then revokes.
    let reading = Arc::new(tokio::sync::Barrier::new(cachers.len() + 1));
    let watching: Vec<_> = cachers
        .iter()
        .map(|cacher| {
            let (cacher, target) = (cacher.clone(), target.clone());
            let reading = Arc::clone(&reading);
            tokio::spawn(async move {
                let ctx = cacher.context(Principal::named("fleet"));
                let give_up = Instant::now() + Duration::from_secs(10);
                let mut last_success = 0;
                for read in 0.. {
                    if read == 1 {
                        reading.wait().await;
                    }
                    let started = unix_nanos();
                    match ctx.get::<ApiKey>(&target).await {
                        Ok(_) if Instant::now() < give_up => last_success = started,
                        Ok(_) => return format!("{last_success} 0 still-served"),
                        Err(error) => {
                            return format!("{last_success} {} {}", unix_nanos(), error.code());
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                unreachable!("the reads end by returning")
            })
        })
        .collect();
    reading.wait().await;
    println!("{TAG}READING");
    for seen in watching {
        println!("{TAG}SEEN {}", seen.await.unwrap());
    }
    for cacher in &cachers {
        cacher.shutdown().await.unwrap();
    }
}

/// Worker `worker` of fleet run `run`, its stores at `url` (behind a pooler: `direct` the
/// server), its master key in the file `key`.
fn start_worker(
    url: &str,
    direct: Option<&str>,
    run: &str,
    worker: usize,
    key: &str,
) -> Conversation {
    let mut command = child_test(module_path!(), "fleet_worker");
    command
        .env("FLEET_URL", url)
        .env("FLEET_RUN", run)
        .env("FLEET_WORKER", worker.to_string())
        .env("FLEET_MANAGERS", fleet_size().1.to_string())
        .env("FLEET_KEY", key);
    if let Some(direct) = direct {
        command.env("FLEET_DIRECT", direct);
    }
    Conversation::start(command)
}

/// Counts the server's client connections (other than its own) every few milliseconds until
/// stopped; the most it saw.
fn count_connections(
    admin: PostgresStore,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let client = admin.pooled_client().await.unwrap();
        let mut peak = 0;
        while !stop.load(Ordering::Acquire) {
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            peak = peak.max(usize::try_from(row.get::<_, i64>(0)).unwrap());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        peak
    })
}

/// What one run of the fleet measured.
struct Figures {
    reads: usize,
    writes: usize,
    peak_connections: usize,
    load: Duration,
    /// From the revoke's return to each caching manager's first refusal (zero when before).
    refusals: Vec<Duration>,
}

async fn run_fleet(
    server: &OwnService,
    pooler: Option<&OwnService>,
    run: &str,
    key_file: &Path,
) -> Figures {
    let (workers, managers) = fleet_size();
    let admin = Manager::builder()
        .store(PostgresStore::connect(&server.url).await.unwrap())
        .key_ring(KeyRing::from_file(key_file).unwrap())
        .cache(CacheConfig::disabled())
        .build()
        .await
        .unwrap();
    for shared in 0..SHARED {
        let id = format!("fleet/{run}/shared-{shared}");
        admin.create(&id, ApiKey::new("sk_shared".into())).await.unwrap().activate().await.unwrap();
    }
    let target = admin
        .create(&format!("fleet/{run}/target"), ApiKey::new("sk_target".into()))
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();

    // Counted on a connection of its own (another application name, so another pool).
    let counter_url = format!("{}&application_name=credential-fleet-counter", server.url);
    let stop = Arc::new(AtomicBool::new(false));
    let counting =
        count_connections(PostgresStore::connect(&counter_url).await.unwrap(), Arc::clone(&stop));

    let (url, direct) = match pooler {
        Some(pooler) => (pooler.url.as_str(), Some(server.url.as_str())),
        None => (server.url.as_str(), None),
    };
    let started = Instant::now();
    let mut fleet: Vec<Conversation> = (0..workers)
        .map(|worker| start_worker(url, direct, run, worker, key_file.to_str().unwrap()))
        .collect();
    let (mut reads, mut writes) = (0, 0);
    for worker in &mut fleet {
        let loaded = tokio::task::block_in_place(|| worker.expect());
        let fields: Vec<&str> = loaded.split(' ').collect();
        assert_eq!(fields[0], "LOADED", "{loaded}");
        assert_eq!(fields[3], "0", "{run}: calls failed: {loaded}");
        reads += fields[1].parse::<usize>().unwrap();
        writes += fields[2].parse::<usize>().unwrap();
    }
    let load = started.elapsed();

    for worker in &mut fleet {
        worker.send("GO");
    }
    // Every worker's caching managers are reading the cached value.
    for worker in &mut fleet {
        let reading = tokio::task::block_in_place(|| worker.expect());
        assert_eq!(reading, "READING");
    }
    target.revoke("fleet test").await.unwrap();
    let revoked_at = unix_nanos();
    let mut refusals = Vec::new();
    for worker in &mut fleet {
        for _ in 0..managers {
            let seen = tokio::task::block_in_place(|| worker.expect());
            let fields: Vec<&str> = seen.split(' ').collect();
            assert_eq!(fields[0], "SEEN", "{seen}");
            assert_eq!(fields[3], "revoked", "{run}: a manager never saw the revoke: {seen}");
            let last_success: u128 = fields[1].parse().unwrap();
            let stale = Duration::from_nanos(last_success.saturating_sub(revoked_at) as u64);
            assert!(stale <= REVOKE_BOUND, "{run}: served {stale:?} after the revoke");
            let refused: u128 = fields[2].parse().unwrap();
            refusals.push(Duration::from_nanos(refused.saturating_sub(revoked_at) as u64));
        }
    }
    for worker in &mut fleet {
        assert!(worker.child.wait().unwrap().success());
    }
    stop.store(true, Ordering::Release);
    let peak_connections = counting.await.unwrap();
    admin.shutdown().await.unwrap();
    refusals.sort();
    Figures { reads, writes, peak_connections, load, refusals }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_on_a_default_server_never_runs_out_of_connections_directly_or_through_pgbouncer() {
    let Some(server) = OwnService::postgres_taking("fleet", 100) else { return };
    let pooler = OwnService::pgbouncer(&server);
    let dir = scratch_dir("fleet");
    let key_file = dir.join("master.key");
    MasterKey::generate().unwrap().write_file(&key_file).unwrap();
    let (workers, managers) = fleet_size();
    for (run, pooler) in [("direct", None), ("pgbouncer", Some(&pooler))] {
        let figures = run_fleet(&server, pooler, run, &key_file).await;
        let at = |fraction: f64| {
            figures.refusals[((figures.refusals.len() - 1) as f64 * fraction) as usize]
        };
        println!(
            "fleet {run}: {workers} workers × {managers} managers, {} reads and {} writes in {:?}, \
             peak {} server connections; revoke refused after median {:?}, max {:?}",
            figures.reads,
            figures.writes,
            figures.load,
            figures.peak_connections,
            at(0.5),
            at(1.0),
        );
        assert_eq!(figures.reads, workers * managers * TASKS_PER_MANAGER * READS_PER_TASK);
        // The sizing rule: a pool and a listener per worker, or behind the pooler its server
        // connections and a listener per worker; and the parent's pool connection and listener.
        let rule = match pooler {
            None => workers * (PostgresStore::DEFAULT_POOL_SIZE + 1) + 2,
            Some(_) => PGBOUNCER_SERVER_CONNECTIONS + workers + 2,
        };
        assert!(
            figures.peak_connections <= rule,
            "{run}: {} server connections, more than the {rule} of the sizing rule",
            figures.peak_connections
        );
        if (workers, managers) == (8, 8) {
            assert!(figures.peak_connections < PEAK_BOUND, "{run}: {}", figures.peak_connections);
        }
    }
}
