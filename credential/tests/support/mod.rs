//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod conversation;
pub(crate) mod oidc;
pub(crate) mod spans;
pub(crate) mod stress;
pub(crate) mod tools;
pub(crate) mod vault;

/// The name the test harness gives test `name` of the module whose `module_path!()` is `module`:
/// what a test passes (with `--exact`) to run that one test of this binary in a child process.
pub(crate) fn test_named(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    }
}

use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A fresh scratch directory (mode 0700) under the system temp dir, unique to this process, its
/// `name` and its number, removed with everything in it when dropped.
pub(crate) struct ScratchDir(PathBuf);

impl Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn scratch_dir(name: &str) -> ScratchDir {
    // Numbered too: two tests of the binary that pick one name still get a directory each.
    static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let number = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir()
        .join(format!("credential-test-{name}-{}-{number}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    ScratchDir(dir)
}

/// A PostgreSQL schema of its own for one test, on the server `.ci/postgres.sh start` made (named
/// by `CREDENTIAL_TEST_POSTGRES_URL`), dropped with everything in it when dropped. Administration
/// goes through `psql`, which comes with the server.
pub(crate) struct PgSchema {
    name: String,
    /// The server's URL with this schema as the search path.
    pub(crate) url: String,
}

impl PgSchema {
    /// A fresh schema for `test`, or `None` when no server is configured: the test says so and
    /// passes, unless `CREDENTIAL_TEST_POSTGRES_REQUIRED` is set (as CI sets it), when it fails.
    pub(crate) fn create(test: &str) -> Option<Self> {
        let base = postgres_server_or_skip(test)?;
        let name = format!("t_{}_{}", test.replace(['-', '/'], "_"), std::process::id());
        psql(&base, &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"));
        let url = format!("{base}&options=-csearch_path%3D{name}");
        Some(Self { name, url })
    }

    /// Runs `sql` in this schema and returns what it printed, unaligned and without headers.
    pub(crate) fn psql(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Some(base) = postgres_server_url() {
            let _ = std::process::Command::new("psql")
                .args([
                    base.as_str(),
                    "-qAtc",
                    &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
                ])
                .output();
        }
    }
}

/// A database of its own for one test on the shared test server, reached directly and through
/// the PgBouncer in front of that server (`.ci/pgbouncer.sh`, named by
/// `CREDENTIAL_TEST_PGBOUNCER_URL`, in transaction mode); dropped when dropped. A database rather
/// than a schema: PgBouncer does not pass a search path in the connection's options.
pub(crate) struct PgDatabase {
    name: String,
    /// Straight to the server.
    pub(crate) url: String,
    /// Through the pooler.
    pub(crate) pooled_url: String,
}

impl PgDatabase {
    /// A fresh database for `test`, or `None` when no server (or no pooler) is configured: the
    /// test says so and passes, unless `CREDENTIAL_TEST_POSTGRES_REQUIRED` is set, when it fails.
    pub(crate) fn create(test: &str) -> Option<Self> {
        let base = postgres_server_or_skip(test)?;
        let Some(pooler) = std::env::var("CREDENTIAL_TEST_PGBOUNCER_URL").ok() else {
            assert!(
                std::env::var_os("CREDENTIAL_TEST_POSTGRES_REQUIRED").is_none(),
                "CREDENTIAL_TEST_PGBOUNCER_URL is not set: start a pooler with .ci/pgbouncer.sh"
            );
            eprintln!("skipped {test}: no PgBouncer (see .ci/pgbouncer.sh)");
            return None;
        };
        let name = format!("t_{}_{}", test.replace(['-', '/'], "_"), std::process::id());
        psql(&base, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        psql(&base, &format!("CREATE DATABASE {name}"));
        let with_database = |url: &str| url.replacen("/credential?", &format!("/{name}?"), 1);
        Some(Self { url: with_database(&base), pooled_url: with_database(&pooler), name })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Some(base) = postgres_server_url() {
            let _ = std::process::Command::new("psql")
                .args([
                    base.as_str(),
                    "-qAtc",
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                ])
                .output();
        }
    }
}

/// The test server's URL, or `None` when no server is configured: the test says so and passes,
/// unless `CREDENTIAL_TEST_POSTGRES_REQUIRED` is set (as CI sets it), when it fails.
pub(crate) fn postgres_server_or_skip(test: &str) -> Option<String> {
    let url = postgres_server_url();
    if url.is_none() {
        assert!(
            std::env::var_os("CREDENTIAL_TEST_POSTGRES_REQUIRED").is_none(),
            "CREDENTIAL_TEST_POSTGRES_URL is not set: start a server with .ci/postgres.sh"
        );
        eprintln!("skipped {test}: no PostgreSQL server (see .ci/postgres.sh)");
    }
    url
}

/// A server of one test's own, made by a `.ci` script like the shared ones and stopped by it when
/// dropped: a PostgreSQL server for a test that disturbs its server (restarts it) or needs its
/// limits while other tests use theirs, and PgBouncer in front of one. Started only where the
/// shared test server runs, so where PostgreSQL is installed.
pub(crate) struct OwnService {
    /// A `verify-full` URL for its `credential` database.
    pub(crate) url: String,
    /// Its directory: for a server its data, certificates, and the `restart` script.
    pub(crate) state: PathBuf,
    /// The `.ci` script that made it.
    script: &'static str,
}

impl OwnService {
    /// A PostgreSQL server that takes 200 clients, as the shared one.
    pub(crate) fn postgres(test: &str) -> Option<Self> {
        Self::postgres_taking(test, 200)
    }

    /// A PostgreSQL server that takes at most `max_connections` clients (PostgreSQL's default
    /// is 100).
    pub(crate) fn postgres_taking(test: &str, max_connections: u32) -> Option<Self> {
        postgres_server_or_skip(test)?;
        let limit = max_connections.to_string();
        Some(Self::start(
            "postgres.sh",
            "POSTGRES",
            &[],
            Some(("CREDENTIAL_TEST_POSTGRES_MAX_CONNECTIONS", &limit)),
        ))
    }

    /// PgBouncer in transaction mode in front of `server`.
    pub(crate) fn pgbouncer(server: &OwnService) -> Self {
        let state = server.state.to_str().unwrap();
        Self::start("pgbouncer.sh", "PGBOUNCER", &[&server.url, state], None)
    }

    /// Runs `.ci/{script} start args…` with `env` set and reads the URL and state directory it
    /// exports as `CREDENTIAL_TEST_{exports}_URL` and `_STATE`.
    fn start(
        script: &'static str,
        exports: &str,
        args: &[&str],
        env: Option<(&str, &str)>,
    ) -> Self {
        let mut command = std::process::Command::new("bash");
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let output = command
            .arg("-c")
            .arg(format!(
                r#"eval "$(bash "$0" start "$@")" && printf '%s\n%s\n' "$CREDENTIAL_TEST_{exports}_URL" "$CREDENTIAL_TEST_{exports}_STATE""#
            ))
            .arg(ci_script(script))
            .args(args)
            .output()
            .unwrap();
        let printed = String::from_utf8(output.stdout).unwrap();
        let mut lines = printed.lines();
        match (output.status.success(), lines.next(), lines.next()) {
            (true, Some(url), Some(state)) => {
                Self { url: url.to_owned(), state: PathBuf::from(state), script }
            }
            _ => panic!("{script} did not start: {}", String::from_utf8_lossy(&output.stderr)),
        }
    }
}

impl Drop for OwnService {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(ci_script(self.script))
            .arg("stop")
            .arg(&self.state)
            .output();
    }
}

/// The path of `.ci/{script}`.
fn ci_script(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci").join(script)
}

/// The test server's URL (a `verify-full` URL with a query string), if one is configured.
pub(crate) fn postgres_server_url() -> Option<String> {
    std::env::var("CREDENTIAL_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty())
}

/// The directory of the test server: its CA certificates and its `restart` script.
pub(crate) fn postgres_state_dir() -> PathBuf {
    PathBuf::from(std::env::var("CREDENTIAL_TEST_POSTGRES_STATE").unwrap())
}

/// Runs `sql` with `psql` against `url` and returns its output, unaligned and without headers.
pub(crate) fn psql(url: &str, sql: &str) -> String {
    let output = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .unwrap();
    assert!(output.status.success(), "psql failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The process ids of the backends of the change feeds `process` runs on the schema `url`
/// names (its search path): not those of other tests in the same process.
pub(crate) fn feed_backends(url: &str, process: u32) -> Vec<u32> {
    psql(
        url,
        &format!(
            "SELECT pid FROM pg_stat_activity
             WHERE application_name = 'credential-feed/{process}/' || current_schema()"
        ),
    )
    .lines()
    .map(|pid| pid.parse().unwrap())
    .collect()
}

/// Waits until `at` has passed on this machine's clock: for a credential that must expire while
/// it is served (one that has expired already is refused at activation).
pub(crate) async fn wait_until_past(at: chrono::DateTime<chrono::Utc>) {
    while chrono::Utc::now() <= at {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
