//! Rotation of real PostgreSQL passwords: both strategies under a workload that reads the
//! credential and connects with it, a failed test rolled back, a rotation stopped inside each of
//! its steps and finished by another manager, two scheduled managers rotating once, and no
//! password in any audit record, error or report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use credential::audit::{AuditAction, AuditOutcome, AuditQuery, AuditSink, MemoryAuditSink};
use credential::kinds::Database;
use credential::prelude::*;
use credential::rotation::{
    PostgresRotator, RotationConfig, RotationContext, RotationError, RotationOutcome,
    RotationPolicy, RotationStep, Rotator,
};
use credential::store::Store;
use support::{postgres_server_url, psql, scratch_dir};
use tokio::sync::mpsc;

/// Roles of one test, created with `password` and dropped when the test ends, however it ends.
struct Roles {
    admin_url: String,
    names: Vec<String>,
}

impl Roles {
    /// Roles `{test}_{pid}` (and its `_clone` twin when `twin`), or `None` without a server.
    fn create(test: &str, password: &str, twin: bool) -> Option<Self> {
        let Some(admin_url) = postgres_server_url() else {
            assert!(
                std::env::var_os("CREDENTIAL_TEST_POSTGRES_REQUIRED").is_none(),
                "CREDENTIAL_TEST_POSTGRES_URL is not set: start a server with .ci/postgres.sh"
            );
            eprintln!("skipped {test}: no PostgreSQL server (see .ci/postgres.sh)");
            return None;
        };
        let base = format!("rot_{test}_{}", std::process::id());
        let mut names = vec![base.clone()];
        if twin {
            names.push(format!("{base}_clone"));
        }
        let roles = Self { admin_url, names };
        for name in &roles.names {
            psql(
                &roles.admin_url,
                &format!(
                    "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN PASSWORD '{password}'"
                ),
            );
        }
        Some(roles)
    }

    fn user(&self) -> &str {
        &self.names[0]
    }

    /// A credential for `user` with `password` on the test server.
    fn database(&self, user: &str, password: &str) -> Database {
        let mut database = Database::from_url(&self.admin_url).unwrap();
        database.user = user.to_owned();
        database.password = password.into();
        database
    }

    /// What the server stores for the role: its password verifier.
    fn verifier(&self, user: &str) -> String {
        psql(
            &self.admin_url,
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'"),
        )
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::process::Command::new("psql")
                .args([self.admin_url.as_str(), "-qAtc", &format!("DROP ROLE IF EXISTS {name}")])
                .output();
        }
    }
}

/// Logs in as `database` says (no TLS: the test server also takes plain loopback connections)
/// and runs one query.
async fn log_in(database: &Database) -> Result<(), tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&database.host)
        .port(database.port)
        .dbname(&database.database)
        .user(&database.user)
        .password(database.password.expose_secret())
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let result = client.simple_query("SELECT 1").await.map(drop);
    drop(client);
    let _ = driver.await;
    result
}

struct Fixture {
    store: Arc<dyn Store>,
    ring: KeyRing,
    audit: Arc<MemoryAuditSink>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            ring: KeyRing::generate().unwrap(),
            audit: Arc::new(MemoryAuditSink::new()),
        }
    }

    /// On the SQLite store and key file in `dir`, which another process can open too.
    async fn on_disk(dir: &Path) -> Self {
        Self {
            store: Arc::new(SqliteStore::open(dir.join("credentials.db")).await.unwrap()),
            ring: KeyRing::from_file(dir.join("master.key")).unwrap(),
            audit: Arc::new(MemoryAuditSink::new()),
        }
    }

    /// A manager on the fixture's store rotating with `rotator`; a short lease, so that a
    /// rotation left behind is taken over quickly (the lease lapses on the server's clock, which
    /// a test cannot move), yet long enough for any one rotation here, which takes milliseconds.
    async fn manager<R: Rotator>(&self, rotator: R, policy: Option<RotationPolicy>) -> Manager {
        let store = Arc::clone(&self.store);
        let config = RotationConfig::default()
            .deadline(Duration::from_millis(1500), Duration::from_secs(2))
            .tick(Duration::from_millis(20));
        let mut builder = Manager::builder()
            .store(store)
            .key_ring(self.ring.clone())
            .audit(Arc::clone(&self.audit))
            .rotator(rotator)
            .rotation_config(config);
        if let Some(policy) = policy {
            builder = builder.rotation_policy(policy);
        }
        builder.build().await.unwrap()
    }

    async fn events(&self, action: AuditAction) -> Vec<credential::audit::AuditEvent> {
        let events = self.audit.query(&AuditQuery::all()).await.unwrap();
        events.into_iter().filter(|event| event.action == action).collect()
    }

    async fn audit_text(&self) -> String {
        let events = self.audit.query(&AuditQuery::all()).await.unwrap();
        events.iter().map(|event| format!("{event:?}\n")).collect()
    }
}

fn ctx(manager: &Manager) -> credential::Context {
    manager.context(Principal::new("workflow/orders", "action/sync"))
}

const CANARY: &str = "CANARYrot7f3a9c21";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_user_rotation_sets_a_hashed_password_and_the_old_one_is_refused() {
    let Some(roles) = Roles::create("single", CANARY, false) else { return };
    let spans = support::spans::capture();
    let fixture = Fixture::new();
    let manager = fixture.manager(PostgresRotator::single_user(), None).await;
    let database = roles.database(roles.user(), CANARY);
    manager.create("db/orders", database).await.unwrap().activate().await.unwrap();

    let report = manager.rotate_now("db/orders").await.unwrap();
    assert_eq!(report.outcome, RotationOutcome::Rotated { version: 2 }, "{report:?}");
    let steps: Vec<_> = report.steps.iter().map(|step| step.step).collect();
    use RotationStep::*;
    assert_eq!(steps, [Create, Set, Test, Finish, Retire]);
    assert!(report.steps.iter().all(|step| step.error.is_none()));

    let served = ctx(&manager).get::<Database>("db/orders").await.unwrap();
    let new_password = served.password.expose_secret().to_owned();
    assert_ne!(new_password, CANARY);
    log_in(&served).await.unwrap();
    let old = roles.database(roles.user(), CANARY);
    let refused = log_in(&old).await.unwrap_err();
    assert_eq!(refused.code(), Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD));
    // Sent hashed: the server keeps a SCRAM verifier, never the password.
    let verifier = roles.verifier(roles.user());
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    assert!(!verifier.contains(&new_password));

    for action in [
        AuditAction::Rotate,
        AuditAction::RotateSet,
        AuditAction::RotateTest,
        AuditAction::Commit,
        AuditAction::RotateRetire,
    ] {
        let events = fixture.events(action).await;
        assert!(
            events.iter().any(|event| event.outcome == AuditOutcome::Success),
            "no successful {action}"
        );
    }
    let trail = fixture.audit_text().await;
    let report = format!("{report:?}");
    let spans = spans.text.lock().unwrap().clone();
    assert!(spans.contains("credential rotation step done"), "no rotation event traced");
    for secret in [CANARY, &new_password] {
        assert!(!trail.contains(secret), "a password in the audit trail");
        assert!(!report.contains(secret), "a password in the report");
        assert!(!spans.contains(secret), "a password in a span or event");
    }
    // The manager served both: its masker knows them.
    assert_eq!(manager.masker().mask(&format!("{CANARY} {new_password}")), "*** ***");
}

/// Readers that read the credential through a context and log in with it, over and over, until
/// told to stop; they count their failed logins.
struct Workload {
    stop: Arc<AtomicBool>,
    logins: Arc<AtomicUsize>,
    failures: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Workload {
    fn start(manager: &Manager, id: &'static str, workers: usize) -> Self {
        let (stop, logins, failures) = Default::default();
        let mut workload = Self { stop, logins, failures, workers: Vec::new() };
        for _ in 0..workers {
            let ctx = ctx(manager);
            let (stop, logins, failures) = (
                Arc::clone(&workload.stop),
                Arc::clone(&workload.logins),
                Arc::clone(&workload.failures),
            );
            workload.workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let database = ctx.get::<Database>(id).await.unwrap();
                    match log_in(&database).await {
                        Ok(()) => logins.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            assert_eq!(
                                error.code(),
                                Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
                                "a login failed for another reason: {error}"
                            );
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
        workload
    }

    /// Stops the readers; returns (logins, failed logins).
    async fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.unwrap();
        }
        (self.logins.load(Ordering::Relaxed), self.failures.load(Ordering::Relaxed))
    }
}

const ROTATIONS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_users_keep_every_login_working_through_twenty_rotations() {
    let Some(roles) = Roles::create("alternating", CANARY, true) else { return };
    let fixture = Fixture::new();
    let manager = fixture.manager(PostgresRotator::alternating_users("db/admin"), None).await;
    let admin = Database::from_url(&roles.admin_url).unwrap();
    manager.create("db/admin", admin).await.unwrap().activate().await.unwrap();
    let database = roles.database(roles.user(), CANARY);
    manager.create("db/orders", database).await.unwrap().activate().await.unwrap();

    let workload = Workload::start(&manager, "db/orders", 4);
    for _ in 0..ROTATIONS {
        let report = manager.rotate_now("db/orders").await.unwrap();
        assert!(matches!(report.outcome, RotationOutcome::Rotated { .. }), "{report:?}");
    }
    let (logins, failures) = workload.stop().await;
    eprintln!("alternating users: {logins} logins, {failures} failed, {ROTATIONS} rotations");
    assert_eq!(failures, 0);
    assert!(logins > 0);
    // Twenty rotations alternate: the credential is back on its first role, with a new password.
    let served = ctx(&manager).get::<Database>("db/orders").await.unwrap();
    assert_eq!(served.user, roles.user());
    assert_ne!(served.password.expose_secret(), CANARY);
    log_in(&served).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_user_rotations_under_load_fail_only_logins_begun_with_the_old_value() {
    let Some(roles) = Roles::create("single_load", CANARY, false) else { return };
    let fixture = Fixture::new();
    let manager = fixture.manager(PostgresRotator::single_user(), None).await;
    let database = roles.database(roles.user(), CANARY);
    manager.create("db/orders", database).await.unwrap().activate().await.unwrap();

    let workload = Workload::start(&manager, "db/orders", 4);
    for _ in 0..ROTATIONS {
        let report = manager.rotate_now("db/orders").await.unwrap();
        assert!(matches!(report.outcome, RotationOutcome::Rotated { .. }), "{report:?}");
    }
    let (logins, failures) = workload.stop().await;
    // Each failure is a login begun with the value read just before the switch (the workers
    // assert that every failure is a refused password).
    eprintln!("single user: {logins} logins, {failures} failed, {ROTATIONS} rotations");
    assert!(logins > 0);
    let served = ctx(&manager).get::<Database>("db/orders").await.unwrap();
    log_in(&served).await.unwrap();
}

/// The PostgreSQL rotator with a test that always fails.
struct FailingTest(PostgresRotator);

#[async_trait]
impl Rotator for FailingTest {
    type Credential = Database;

    async fn create(
        &self,
        current: &Database,
        context: &RotationContext,
    ) -> Result<Database, RotationError> {
        self.0.create(current, context).await
    }

    async fn set(
        &self,
        current: &Database,
        next: &Database,
        context: &RotationContext,
    ) -> Result<(), RotationError> {
        self.0.set(current, next, context).await
    }

    async fn test(
        &self,
        _next: &Database,
        _context: &RotationContext,
    ) -> Result<(), RotationError> {
        Err(RotationError::Failed { reason: "the application's health check failed".to_owned() })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_test_rolls_back_and_the_old_password_works_again() {
    let Some(roles) = Roles::create("rollback", CANARY, false) else { return };
    let fixture = Fixture::new();
    let manager = fixture.manager(FailingTest(PostgresRotator::single_user()), None).await;
    manager
        .create("db/orders", roles.database(roles.user(), CANARY))
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();

    let report = manager.rotate_now("db/orders").await.unwrap();
    assert_eq!(report.outcome, RotationOutcome::RolledBack, "{report:?}");
    let served = ctx(&manager).get::<Database>("db/orders").await.unwrap();
    assert_eq!(served.password.expose_secret(), CANARY);
    log_in(&served).await.unwrap();
    let active = manager.load::<Database>("db/orders").await.unwrap().into_active().unwrap();
    assert!(active.meta().refresh.lease.is_none(), "the lease was given back");
    let tests = fixture.events(AuditAction::RotateTest).await;
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0].outcome, AuditOutcome::Failure);
    assert_eq!(fixture.events(AuditAction::Rollback).await.len(), 1);
}

/// The PostgreSQL rotator, stopping for good inside `step` (after the step's own work, for set):
/// it says so (on standard output, and on `entered` if given), then waits forever.
struct StopsIn {
    inner: PostgresRotator,
    step: RotationStep,
    entered: Option<mpsc::UnboundedSender<()>>,
}

impl StopsIn {
    async fn stop_here(&self, step: RotationStep) {
        if step == self.step {
            println!("@@STOPPED");
            if let Some(entered) = &self.entered {
                let _ = entered.send(());
            }
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl Rotator for StopsIn {
    type Credential = Database;

    async fn create(
        &self,
        current: &Database,
        context: &RotationContext,
    ) -> Result<Database, RotationError> {
        self.stop_here(RotationStep::Create).await;
        self.inner.create(current, context).await
    }

    async fn set(
        &self,
        current: &Database,
        next: &Database,
        context: &RotationContext,
    ) -> Result<(), RotationError> {
        self.inner.set(current, next, context).await?;
        self.stop_here(RotationStep::Set).await;
        Ok(())
    }

    async fn test(&self, next: &Database, context: &RotationContext) -> Result<(), RotationError> {
        self.stop_here(RotationStep::Test).await;
        self.inner.test(next, context).await
    }

    async fn retire(
        &self,
        previous: &Database,
        current: &Database,
        context: &RotationContext,
    ) -> Result<(), RotationError> {
        self.stop_here(RotationStep::Retire).await;
        self.inner.retire(previous, current, context).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rotation_of_a_credential_in_the_same_manager_is_busy() {
    let Some(roles) = Roles::create("same_manager", CANARY, false) else { return };
    let fixture = Fixture::new();
    let (entered, mut stopped) = mpsc::unbounded_channel();
    let rotator = StopsIn {
        inner: PostgresRotator::single_user(),
        step: RotationStep::Test,
        entered: Some(entered),
    };
    let manager = fixture.manager(rotator, None).await;
    let database = roles.database(roles.user(), CANARY);
    manager.create("db/orders", database).await.unwrap().activate().await.unwrap();
    let rotation = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.rotate_now("db/orders").await })
    };
    stopped.recv().await.unwrap();
    assert_eq!(manager.rotate_now("db/orders").await.unwrap().outcome, RotationOutcome::Busy);
    rotation.abort();
    assert!(rotation.await.unwrap_err().is_cancelled());
}

/// Run as a child process by [`killed_inside`]: rotates `db/orders` with a rotator that stops
/// inside the step `ROTATION_STEP` names, where the parent kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the tests below"]
async fn rotating_child() {
    let (Ok(dir), Ok(step)) = (std::env::var("ROTATION_DIR"), std::env::var("ROTATION_STEP"))
    else {
        return;
    };
    let step = match step.as_str() {
        "create" => RotationStep::Create,
        "set" => RotationStep::Set,
        "test" => RotationStep::Test,
        _ => RotationStep::Retire,
    };
    let fixture = Fixture::on_disk(Path::new(&dir)).await;
    let rotator = StopsIn { inner: PostgresRotator::single_user(), step, entered: None };
    let report = fixture.manager(rotator, None).await.rotate_now("db/orders").await;
    panic!("the rotation did not stop inside {step:?}: {report:?}");
}

/// A process killed with `SIGKILL` inside `step` of a rotation (its lease left behind) is
/// followed by another manager that, once the lease lapses, finishes the rotation: the credential
/// then works and the password it replaced does not.
async fn killed_inside(step: RotationStep, test: &str) {
    let Some(roles) = Roles::create(test, CANARY, false) else { return };
    let dir = scratch_dir(test);
    credential::crypto::MasterKey::generate().unwrap().write_file(dir.join("master.key")).unwrap();
    let fixture = Fixture::on_disk(&dir).await;
    let inner = PostgresRotator::single_user();
    let writer = fixture.manager(inner.clone(), None).await;
    let database = roles.database(roles.user(), CANARY);
    writer.create("db/orders", database).await.unwrap().activate().await.unwrap();
    drop(writer);

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            support::test_named(module_path!(), "rotating_child").as_str(),
            "--nocapture",
        ])
        .env("ROTATION_DIR", &*dir)
        .env("ROTATION_STEP", step.as_str())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stopped = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout).lines().map(Result::unwrap).any(|line| line == "@@STOPPED")
    });
    assert!(stopped.await.unwrap(), "the child ended before it stopped inside {step:?}");
    let second = fixture.manager(inner, None).await;
    if step != RotationStep::Retire {
        // The child holds the lease: one rotation per fleet.
        assert_eq!(second.rotate_now("db/orders").await.unwrap().outcome, RotationOutcome::Busy);
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let report = loop {
        let report = second.rotate_now("db/orders").await.unwrap();
        if report.outcome != RotationOutcome::Busy {
            break report;
        }
        // The killed process's lease lapses on the store's clock.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(matches!(report.outcome, RotationOutcome::Rotated { .. }), "{step:?}: {report:?}");
    let served = ctx(&second).get::<Database>("db/orders").await.unwrap();
    log_in(&served).await.unwrap();
    let refused = log_in(&roles.database(roles.user(), CANARY)).await.unwrap_err();
    assert_eq!(refused.code(), Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_killed_inside_create_is_finished_by_the_next_run() {
    killed_inside(RotationStep::Create, "kill_create").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_killed_inside_set_is_finished_by_the_next_run() {
    killed_inside(RotationStep::Set, "kill_set").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_killed_inside_test_is_finished_by_the_next_run() {
    killed_inside(RotationStep::Test, "kill_test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_killed_inside_finish_leaves_the_new_value_committed() {
    killed_inside(RotationStep::Retire, "kill_finish").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_with_the_same_due_policy_rotate_each_credential_once() {
    let Some(roles) = Roles::create("scheduled", CANARY, false) else { return };
    let fixture = Fixture::new();
    let policy = RotationPolicy::new("db/*").before_expiry(Duration::from_secs(3600));
    let writer = fixture.manager(PostgresRotator::single_user(), None).await;
    writer
        .create("db/orders", roles.database(roles.user(), CANARY))
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();
    // Due: it expires within the window (a database credential has no expiry of its own).
    expire_soon(&fixture, "db/orders").await;
    drop(writer);

    let first = fixture.manager(PostgresRotator::single_user(), Some(policy.clone())).await;
    let second = fixture.manager(PostgresRotator::single_user(), Some(policy)).await;
    // Both schedules tick every 20 ms; wait until one has rotated.
    for _ in 0..500 {
        if !fixture.events(AuditAction::Commit).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give both schedules many more ticks: neither may rotate again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fixture.events(AuditAction::Rotate).await.len(), 1);
    assert_eq!(fixture.events(AuditAction::Commit).await.len(), 1);
    let served = ctx(&first).get::<Database>("db/orders").await.unwrap();
    log_in(&served).await.unwrap();
    drop((first, second));
}

/// Sets the stored expiry of `id` to ten minutes from now, re-tagged as a manager would.
async fn expire_soon(fixture: &Fixture, id: &str) {
    let storage_id = format!("default/{id}");
    let mut record = fixture.store.get(&storage_id).await.unwrap().unwrap();
    let revision = record.meta.revision;
    record.meta.expires_at = Some(chrono::Utc::now() + chrono::Duration::minutes(10));
    record.meta.tag = credential::hazmat::tag(&fixture.ring, &record).unwrap();
    fixture.store.put(record, credential::store::Precondition::Revision(revision)).await.unwrap();
}
