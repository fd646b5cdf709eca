//! `cred` on a PostgreSQL store (feature `postgres`): the same commands, the audit trail in the
//! database's table, and a backup moved from PostgreSQL to SQLite.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Cli;

/// A fresh schema on the test server, dropped afterwards; `None` when no server is configured.
struct Schema {
    base: String,
    name: String,
    url: String,
}

impl Schema {
    fn create() -> Option<Self> {
        let Some(base) =
            std::env::var("CREDENTIAL_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var_os("CREDENTIAL_TEST_POSTGRES_REQUIRED").is_none(),
                "CREDENTIAL_TEST_POSTGRES_URL is not set: start a server with .ci/postgres.sh"
            );
            return None;
        };
        let name = format!("cred_cli_{}", std::process::id());
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
    let Some(schema) = Schema::create() else { return };
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
