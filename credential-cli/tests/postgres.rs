//! `cred` on a PostgreSQL store (feature `postgres`): the same commands, the audit trail in the
//! database's table, and a backup moved from PostgreSQL to SQLite.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use support::Cli;

/// A fresh schema on the test server, dropped afterwards; `None` when no server is configured.
struct Schema {
    base: String,
    name: String,
    url: String,
}

/// The test server's URL; `None` when no server is configured (and none is required).
fn server() -> Option<String> {
    let base = std::env::var("CREDENTIAL_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    assert!(
        base.is_some() || std::env::var_os("CREDENTIAL_TEST_POSTGRES_REQUIRED").is_none(),
        "CREDENTIAL_TEST_POSTGRES_URL is not set: start a server with .ci/postgres.sh"
    );
    base
}

impl Schema {
    fn create(test: &str) -> Option<Self> {
        let base = server()?;
        let name = format!("cred_cli_{test}_{}", std::process::id());
        psql(&base, &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"));
        let url = format!("{base}&options=-csearch_path%3D{name}");
        Some(Self { base, name, url })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        psql(&self.base, &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

fn psql(url: &str, sql: &str) -> String {
    let output = std::process::Command::new("psql").args([url, "-qAtc", sql]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_commands_work_on_postgresql_and_a_backup_moves_to_sqlite() {
    if !support::tools::installed(&[("age-keygen", "age")]) {
        return;
    }
    let Some(schema) = Schema::create("commands") else { return };
    let cli = Cli::new("postgres");
    let pg = ["--store", schema.url.as_str()];
    let mut runs = vec![cli.run(&[&pg[..], &["init"]].concat()).ok()];
    let put = [&pg[..], &["put", "api_key", "stripe/live", "--set", "key=-", "--activate"]];
    runs.push(cli.run_with_input(&put.concat(), b"sk_live_pg_canary").ok());
    let get = cli.run(&[&pg[..], &["get", "stripe/live", "--reveal", "-f", "key"]].concat()).ok();
    assert_eq!(get.stdout.trim(), "sk_live_pg_canary");
    runs.push(cli.run(&[&pg[..], &["revoke", "stripe/live", "--reason", "test"]].concat()).ok());

    // The trail is the database's table: queried there, and not hash-chained.
    let rows = psql(&schema.url, "SELECT count(*) FROM credential_audit WHERE action = 'reveal'");
    assert_eq!(rows.trim(), "1");
    let events = cli.run(&[&pg[..], &["--json", "audit", "query"]].concat()).ok().json();
    assert!(events.as_array().unwrap().len() >= 4);
    runs.push(cli.run(&[&pg[..], &["audit", "verify"]].concat()).fails_with(1));
    let doctor = cli.run(&[&pg[..], &["doctor", "--deep"]].concat()).ok();
    assert!(doctor.stdout.contains("audit table (not hash-chained)"), "{doctor:?}");
    runs.push(doctor);

    // Export from PostgreSQL with a passphrase-free recipient, import into SQLite.
    let identity = cli.path("id.txt");
    std::process::Command::new("age-keygen").arg("-o").arg(&identity).output().unwrap();
    let recipient = std::process::Command::new("age-keygen").arg("-y").arg(&identity).output();
    let recipient = String::from_utf8(recipient.unwrap().stdout).unwrap();
    let backup = cli.path("pg.age");
    let export = ["export", "-r", recipient.trim(), "-o", backup.to_str().unwrap()];
    runs.push(cli.run(&[&pg[..], &export[..]].concat()).ok());
    cli.run(&["init"]).ok();
    cli.run(&["import", backup.to_str().unwrap(), "-i", identity.to_str().unwrap()]).ok();
    let listed = cli.run(&["--json", "list"]).ok().json();
    assert_eq!(listed[0]["state"], "revoked");

    // The connection URL and its password are never printed.
    let password = schema.base.split('@').next().and_then(|user| user.rsplit(':').next()).unwrap();
    for run in runs {
        assert!(!run.all().contains(&schema.url) && !run.all().contains(password), "{run:?}");
    }
}

/// A login role on the test server with `password`, dropped afterwards.
struct Role {
    base: String,
    name: String,
}

impl Role {
    fn create(password: &str) -> Option<Self> {
        let base = std::env::var("CREDENTIAL_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
        let name = format!("cred_cli_rotated_{}", std::process::id());
        psql(
            &base,
            &format!("DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
        );
        Some(Self { base, name })
    }

    /// Whether `password` logs in as the role.
    fn logs_in_with(&self, password: &str) -> bool {
        let (host_port, _) = self.base.split('@').nth(1).unwrap().split_once('/').unwrap();
        let url =
            format!("postgres://{}:{password}@{host_port}/credential?sslmode=disable", self.name);
        std::process::Command::new("psql")
            .args([&url, "-qAtc", "SELECT 1"])
            .output()
            .unwrap()
            .status
            .success()
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        psql(&self.base, &format!("DROP ROLE IF EXISTS {}", self.name));
    }
}

#[test]
fn rotate_auto_changes_a_real_password_and_rotation_list_shows_it() {
    const CANARY: &str = "CANARYcliRot5d2e8b";
    let Some(schema) = Schema::create("rotation") else { return };
    let role = Role::create(CANARY).unwrap();
    let port = schema.base.split('@').nth(1).unwrap().split(['/', ':']).nth(1).unwrap().to_owned();
    let cli = Cli::initialized("rotate_auto");
    let user = format!("user={}", role.name);
    let port = format!("port={port}");
    let put = [
        "put",
        "database",
        "db/orders",
        "--activate",
        "--set",
        "driver=postgresql",
        "--set",
        "host=localhost",
        "--set",
        port.as_str(),
        "--set",
        "database=credential",
        "--set",
        user.as_str(),
        "--set",
        "tls_mode=disable",
        "--set",
        "password=-",
    ];
    let mut runs = vec![cli.run_with_input(&put, CANARY.as_bytes()).ok()];

    let rotated = cli.run(&["rotate", "db/orders", "--auto"]).ok();
    assert!(rotated.stdout.contains("rotated db/orders: version 2 served"), "{rotated:?}");
    for step in ["create", "set", "test", "finish", "retire"] {
        assert!(rotated.stdout.contains(step), "{rotated:?}");
    }
    runs.push(rotated);
    let new_password = cli.run(&["get", "db/orders", "--reveal", "-f", "password"]).ok();
    let new_password = new_password.stdout.trim().to_owned();
    assert_ne!(new_password, CANARY);
    assert!(role.logs_in_with(&new_password));
    assert!(!role.logs_in_with(CANARY));

    let listed = cli.run(&["--json", "rotation", "list", "--every", "30d"]).ok();
    let rows = listed.json();
    assert_eq!(rows[0]["id"], "db/orders");
    assert!(rows[0]["last_rotated"].is_string() && rows[0]["next"].is_string(), "{rows}");
    assert!(rows[0]["last_failure"].is_null(), "{rows}");
    runs.push(listed);
    let table = cli.run(&["rotation", "list"]).ok();
    assert!(table.stdout.contains("LAST ROTATED") && table.stdout.contains("db/orders"));
    runs.push(table);
    runs.push(
        cli.run(&["rotate", "db/orders", "--auto", "--strategy", "alternating-users"])
            .fails_with(2),
    );
    runs.push(cli.run(&["rotate", "db/orders", "--auto", "--commit"]).fails_with(2));

    let trail = cli.run(&["--json", "audit", "query", "--id", "db/orders"]).ok();
    for action in ["rotate_set", "rotate_test", "rotate_retire"] {
        assert!(trail.stdout.contains(action), "{action} missing: {trail:?}");
    }
    runs.push(trail);
    for run in runs {
        assert!(!run.all().contains(CANARY) && !run.all().contains(&new_password), "{run:?}");
    }
}

/// A database of its own on the test server, reached directly and through the PgBouncer in
/// front of it (`CREDENTIAL_TEST_PGBOUNCER_URL`); dropped afterwards.
struct Database {
    base: String,
    name: String,
    url: String,
    pooled_url: String,
}

impl Database {
    fn create(test: &str) -> Option<Self> {
        let base = server()?;
        let Some(pooler) = std::env::var("CREDENTIAL_TEST_PGBOUNCER_URL").ok() else {
            assert!(
                std::env::var_os("CREDENTIAL_TEST_POSTGRES_REQUIRED").is_none(),
                "CREDENTIAL_TEST_PGBOUNCER_URL is not set: start a pooler with .ci/pgbouncer.sh"
            );
            return None;
        };
        let name = format!("cred_cli_{test}_{}", std::process::id());
        psql(&base, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        psql(&base, &format!("CREATE DATABASE {name}"));
        let with_database = |url: &str| url.replacen("/credential?", &format!("/{name}?"), 1);
        Some(Self { url: with_database(&base), pooled_url: with_database(&pooler), base, name })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        psql(&self.base, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

#[test]
fn the_commands_work_through_pgbouncer() {
    let Some(database) = Database::create("pgbouncer") else { return };
    let cli = Cli::new("pgbouncer");
    let pg = ["--store", database.pooled_url.as_str(), "--behind-pooler", database.url.as_str()];
    cli.run(&[&pg[..], &["init"]].concat()).ok();
    let put = [&pg[..], &["put", "api_key", "stripe/pooled", "--set", "key=-", "--activate"]];
    cli.run_with_input(&put.concat(), b"sk_live_pooled").ok();
    for _ in 0..3 {
        // Each run a new process, its statements on whichever server connection the pooler picks.
        let get = [&pg[..], &["get", "stripe/pooled", "--reveal", "-f", "key"]].concat();
        assert_eq!(cli.run(&get).ok().stdout.trim(), "sk_live_pooled");
    }
    let rows = psql(&database.url, "SELECT count(*) FROM credential_audit WHERE action = 'reveal'");
    assert_eq!(rows.trim(), "3");
}
