//! Stores shared between processes: compare-and-swap across processes, and crash safety under
//! SIGKILL at random moments, on the file, SQLite and PostgreSQL stores.
//!
//! Child processes are this test binary re-run with `--ignored --exact child_process` and their
//! role in environment variables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use crate::support;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use credential::crypto::MasterKey;
use credential::hazmat::{self, SealContext};
use credential::store::conformance::{self, sample_record};
use credential::store::{FileStore, PostgresStore, Precondition, Store};
use credential::{ExposeSecret, KeyRing, LifecycleState, ListFilter, SqliteStore};
use support::{PgSchema, scratch_dir};

const RECORDS: u64 = 8;

/// The store at `location`: a directory, a database file or a PostgreSQL URL.
async fn open(backend: &str, location: &str) -> Arc<dyn Store> {
    match backend {
        "file" => Arc::new(FileStore::open(location).await.unwrap()),
        "sqlite" => Arc::new(SqliteStore::open(location).await.unwrap()),
        "postgres" => Arc::new(PostgresStore::connect(location).await.unwrap()),
        other => panic!("unknown backend {other}"),
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn record_id(index: u64) -> String {
    format!("crash/record-{index}")
}

/// Entry point of every child process; does nothing when run directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "run as a child process by the tests below"]
async fn child_process() {
    let (backend, path) = (env("CHILD_BACKEND"), env("CHILD_PATH"));
    match env("CHILD_ROLE").as_str() {
        "incrementer" => {
            let store = open(&backend, &path).await;
            let tasks: u64 = env("CHILD_TASKS").parse().unwrap();
            let increments: u64 = env("CHILD_INCREMENTS").parse().unwrap();
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        conformance::increment(store.as_ref(), "shared/counter", increments).await
                    })
                })
                .collect();
            let mut conflicts = 0;
            for handle in handles {
                conflicts += handle.await.unwrap();
            }
            println!("CONFLICTS {conflicts}");
        }
        "writer" => write_until_killed(&backend, &path).await,
        _ => {}
    }
}

/// Rewrites the records in a loop, printing `ACK <record> <value>` after each acknowledged write.
/// Values of record `r` are `r`, `r + RECORDS`, `r + 2 * RECORDS`, ...
async fn write_until_killed(backend: &str, location: &str) {
    let store = open(backend, location).await;
    let ring = KeyRing::new(MasterKey::from_text(&env("CHILD_KEY"), "test").unwrap());
    let mut stdout = std::io::stdout();
    for step in 0..200_000u64 {
        let index = step % RECORDS;
        let id = record_id(index);
        let current = store.get(&id).await.unwrap();
        let value = match &current {
            Some(record) => stored_value(&ring, record) + RECORDS,
            None => index,
        };
        let mut record = sample_record(&id, "counter", &[]);
        record.versions[0].sealed =
            hazmat::seal(&ring, &SealContext::new(&id, 1, "counter"), &value.to_be_bytes())
                .unwrap();
        let precondition = current
            .map_or(Precondition::Absent, |found| Precondition::Revision(found.meta.revision));
        store.put(record, precondition).await.unwrap();
        writeln!(stdout, "ACK {index} {value}").unwrap();
        stdout.flush().unwrap();
    }
}

fn stored_value(ring: &KeyRing, record: &credential::store::Record) -> u64 {
    let context = SealContext::new(&record.meta.id, 1, "counter");
    let opened = hazmat::open(ring, &context, &record.versions[0].sealed)
        .expect("a stored record does not open");
    u64::from_be_bytes(opened.as_slice().try_into().unwrap())
}

fn child(role: &str, backend: &str, location: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            support::test_named(module_path!(), "child_process").as_str(),
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CHILD_ROLE", role)
        .env("CHILD_BACKEND", backend)
        .env("CHILD_PATH", location);
    command
}

/// Where a test keeps `backend`'s store: a scratch directory (or PostgreSQL schema) and the
/// location inside it; `None` when the backend's server is not configured.
enum Place {
    Dir(support::ScratchDir),
    Postgres(PgSchema),
}

impl Place {
    fn new(backend: &str, test: &str) -> Option<Self> {
        match backend {
            "postgres" => PgSchema::create(test).map(Self::Postgres),
            _ => Some(Self::Dir(scratch_dir(&format!("{test}-{backend}")))),
        }
    }

    fn location(&self, backend: &str) -> String {
        match self {
            Self::Postgres(schema) => schema.url.clone(),
            Self::Dir(dir) => {
                let name = if backend == "file" { "store" } else { "credentials.db" };
                dir.join(name).to_str().unwrap().to_owned()
            }
        }
    }
}

/// `tasks` tasks in each of two processes add 1 a hundred times each with compare-and-swap: no
/// increment is lost, and the processes did race. A compare-and-swap that does not hold across
/// processes loses an increment at the first race between them, and hundreds of the writes race.
/// `CREDENTIAL_STRESS=1`: a thousand times each.
async fn counter_across_two_processes(backend: &str, tasks: u64) {
    let increments = support::stress::count(100, 1_000) as u64;
    let Some(place) = Place::new(backend, "two-processes") else { return };
    let location = place.location(backend);
    let store = open(backend, &location).await;
    store
        .put(sample_record("shared/counter", "counter", &0u64.to_be_bytes()), Precondition::Absent)
        .await
        .unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            child("incrementer", backend, &location)
                .env("CHILD_TASKS", tasks.to_string())
                .env("CHILD_INCREMENTS", increments.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut conflicts = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let reported = stdout.lines().find_map(|line| line.split("CONFLICTS ").nth(1)).unwrap();
        conflicts += reported.trim().parse::<u64>().unwrap();
    }
    let record = store.get("shared/counter").await.unwrap().unwrap();
    assert_eq!(conformance::counter_value(&record), 2 * tasks * increments);
    assert_eq!(record.meta.revision, 2 * tasks * increments + 1);
    assert!(conflicts > 0, "{backend}: {} writers never raced", 2 * tasks);
    println!("{backend}: {conflicts} lost races retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_compare_and_swap_holds_across_two_processes() {
    counter_across_two_processes("file", 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_compare_and_swap_holds_across_two_processes() {
    counter_across_two_processes("sqlite", 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_compare_and_swap_holds_across_two_processes() {
    counter_across_two_processes("postgres", 8).await;
}

/// A small xorshift generator: kill timings need variety, not cryptographic quality.
struct Timing(u64);

impl Timing {
    fn new() -> Self {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        Self(seed | 1)
    }

    fn next_millis(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

/// Kills a writer `kills` times, each after a random pause in `pause_ms` (long enough for the
/// child to have started writing, on average).
async fn survives_sigkill(backend: &str, kills: usize, pause_ms: (u64, u64)) {
    let Some(place) = Place::new(backend, &format!("crash-{kills}")) else { return };
    let location = place.location(backend);
    let key = MasterKey::generate().unwrap();
    let ring = KeyRing::new(key.clone());
    let mut acknowledged: HashMap<u64, u64> = HashMap::new();
    let mut timing = Timing::new();
    let mut writes_seen = 0;
    for kill in 0..kills {
        let mut child = child("writer", backend, &location)
            .env("CHILD_KEY", key.to_base64().expose_secret())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(timing.next_millis(pause_ms.0, pause_ms.1)));
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            // The test harness may print its own text before the first acknowledgement.
            let Some(at) = line.find("ACK ") else {
                continue;
            };
            let mut parts = line[at + 4..].split(' ');
            if let (Some(Ok(index)), Some(Ok(value))) =
                (parts.next().map(str::parse), parts.next().map(str::parse))
            {
                let entry = acknowledged.entry(index).or_insert(value);
                *entry = (*entry).max(value);
                writes_seen += 1;
            }
        }

        // After every kill: the store opens, every record opens, and each record holds the newest
        // value known (acknowledged in this run, or seen after the previous kill) or the one
        // write that was in flight when the child died; no acknowledged write is lost.
        let store = open(backend, &location).await;
        let mut in_flight = 0;
        for index in 0..RECORDS {
            let record = store.get(&record_id(index)).await.unwrap();
            let known = acknowledged.get(&index).copied();
            match (record, known) {
                (Some(record), known) => {
                    let value = stored_value(&ring, &record);
                    let next = known.map_or(index, |known| known + RECORDS);
                    if Some(value) != known {
                        assert_eq!(
                            value, next,
                            "kill {kill}: record {index} holds {value}, known {known:?}"
                        );
                        in_flight += 1;
                    }
                    acknowledged.insert(index, value);
                }
                (None, Some(known)) => {
                    panic!("kill {kill}: record {index} lost (acknowledged {known})")
                }
                (None, None) => {}
            }
        }
        assert!(
            in_flight <= 1,
            "kill {kill}: {in_flight} unacknowledged writes survived; at most one was in flight"
        );
        // The keys the store says are in use are those of its records, whatever the kill hit.
        let listed = store.list(&ListFilter::all()).await.unwrap();
        let environments: BTreeSet<&str> =
            listed.iter().map(|meta| meta.environment.as_str()).collect();
        for environment in environments {
            if let Some(kept) = store.key_ids_in_use(environment).await.unwrap() {
                let truth: BTreeSet<String> = listed
                    .iter()
                    .filter(|meta| meta.environment == environment && !meta.key_id.is_empty())
                    .filter(|meta| meta.state != LifecycleState::Revoked)
                    .map(|meta| meta.key_id.clone())
                    .collect();
                assert_eq!(kept, truth, "kill {kill}: the key ids kept disagree with the records");
            }
        }
    }
    assert!(
        writes_seen > kills,
        "the children acknowledged only {writes_seen} writes in {kills} runs"
    );
}

/// Kills per backend. A kill lands at a random moment of a child's write cycle (write, commit,
/// acknowledge, next write), each stage taking a good share of the cycle: 30 kills leave a stage
/// unhit with a probability of well under one in ten thousand, and a loss a kill can cause shows
/// at its first hit. PostgreSQL's cycle is longer and the server does the durable part, so 10
/// suffice there. `CREDENTIAL_STRESS=1`: 1,000 each.
fn kills(normal: usize) -> usize {
    support::stress::count(normal, 1_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_survives_sigkills() {
    survives_sigkill("file", kills(30), (5, 60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_survives_sigkills() {
    survives_sigkill("sqlite", kills(30), (5, 60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_survives_sigkills() {
    survives_sigkill("postgres", kills(10), (40, 200)).await;
}
