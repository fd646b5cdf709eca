//! A kind `cred` was not built with, written by the application that defines it: `cred` lists
//! it, moves it through its lifecycle, shows its metadata, and backs it up and restores it byte
//! for byte, so the application reads it again after a restore under another master key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use credential::prelude::*;
use support::Cli;

#[derive(Credential)]
#[credential(kind = "webhook")]
struct Webhook {
    #[secret]
    signing_key: SecretString,
    url: String,
}

/// The application's manager over the SQLite store `store` (a `sqlite:` URL).
async fn application(store: &str, key: &std::path::Path) -> Manager {
    let path = store.strip_prefix("sqlite:").unwrap();
    Manager::builder()
        .store(SqliteStore::open(path).await.unwrap())
        .key_ring(KeyRing::from_file(key).unwrap())
        .register::<Webhook>()
        .build()
        .await
        .unwrap()
}

/// Exports everything `cli`'s tool holds to an age file and imports it, with the same tool, into
/// a new SQLite store under a new key; returns that store's URL and key file.
fn restored_elsewhere(cli: &Cli) -> (String, std::path::PathBuf) {
    let identity = cli.path("id.txt");
    std::process::Command::new("age-keygen").arg("-o").arg(&identity).output().unwrap();
    let recipient = std::process::Command::new("age-keygen").arg("-y").arg(&identity).output();
    let recipient = String::from_utf8(recipient.unwrap().stdout).unwrap();
    let backup = cli.path("b.age");
    cli.run(&["export", "-r", recipient.trim(), "-o", backup.to_str().unwrap()]).ok();
    let store = format!("sqlite:{}", cli.path("restored/credentials.db").display());
    let key = cli.path("restored.key");
    let other = ["--store", store.as_str(), "--key-file", key.to_str().unwrap()];
    cli.run(&[&other[..], &["init"]].concat()).ok();
    let import = ["import", backup.to_str().unwrap(), "-i", identity.to_str().unwrap()];
    cli.run(&[&other[..], &import[..]].concat()).ok();
    (store, key)
}

#[tokio::test(flavor = "current_thread")]
async fn a_kind_cred_does_not_know_is_operated_and_restored_intact() {
    if !support::tools::installed(&[("age-keygen", "age")]) {
        return;
    }
    let cli = Cli::initialized("custom-kind");
    let app = application(&cli.store, &cli.key_file).await;
    let hook =
        Webhook { signing_key: "whsec_custom_canary".into(), url: "https://h.example".into() };
    app.create("hooks/in", hook).await.unwrap();
    drop(app);

    let listed = cli.run(&["--json", "list"]).ok().json();
    assert_eq!(listed[0]["kind"], "webhook");
    assert_eq!(cli.run(&["--json", "activate", "hooks/in"]).ok().json()["state"], "active");
    let shown = cli.run(&["--json", "get", "hooks/in"]).ok();
    assert_eq!(shown.json()["state"], "active");
    assert!(shown.stderr.contains("not known to cred"));
    // Its fields cannot be revealed or rotated from here: exit 5, nothing shown.
    let revealed = cli.run(&["get", "hooks/in", "--reveal"]).fails_with(5);
    assert!(!revealed.all().contains("whsec_custom_canary"));
    cli.run(&["rotate", "hooks/in", "--set", "url=https://x.example"]).fails_with(5);

    // Backed up and restored under a new key, the application reads it as before.
    let (store, key) = restored_elsewhere(&cli);
    let restored = application(&store, &key).await;
    let ctx = restored.context(Principal::named("app"));
    let hook = ctx.get::<Webhook>("hooks/in").await.unwrap();
    assert_eq!(hook.signing_key.expose_secret(), "whsec_custom_canary");
    assert_eq!(hook.url, "https://h.example");
}

/// The example `app_cred`, an application's own build of the tool, beside this test binary.
fn application_tool() -> std::path::PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_owned();
    deps.parent().unwrap().join("examples/app_cred")
}

#[test]
fn an_application_built_tool_puts_reveals_rotates_and_restores_its_own_kinds() {
    if !support::tools::installed(&[("age-keygen", "age")]) {
        return;
    }
    let mut cli = Cli::new("app-tool");
    cli.binary = application_tool();
    assert!(cli.binary.exists(), "build the example: cargo build -p credential-cli --examples");
    cli.run(&["init"]).ok();
    let put = ["put", "webhook", "hooks/in", "--set", "url=https://hooks.example", "--set"];
    cli.run_with_input(&[&put[..], &["signing_key=-", "--activate"]].concat(), b"whsec_app_1").ok();
    let key = cli.run(&["get", "hooks/in", "--reveal", "--field", "signing_key"]).ok();
    assert_eq!(key.stdout.trim(), "whsec_app_1");
    let shown = cli.run(&["--json", "get", "hooks/in"]).ok().json();
    assert_eq!(shown["fields"]["url"]["value"], "https://hooks.example");
    assert!(!shown.to_string().contains("whsec_app_1"));
    // Its rules hold here as in the application.
    let bad = ["put", "webhook", "hooks/bad", "--set", "url=not a url", "--set", "signing_key=-"];
    cli.run_with_input(&bad, b"whsec_x").fails_with(5);
    let rotate = ["rotate", "hooks/in", "--set", "signing_key=-", "--commit"];
    cli.run_with_input(&rotate, b"whsec_app_2").ok();
    // The generic kind the tool was told of.
    let partner = ["put", "partner_token", "partners/acme", "--set", "partner=acme"];
    cli.run_with_input(&[&partner[..], &["--set", "token=-"]].concat(), b"pt_acme").ok();

    // Exported and imported under another key, by the same tool.
    let (store, key) = restored_elsewhere(&cli);
    let other = ["--store", store.as_str(), "--key-file", key.to_str().unwrap()];
    let get = ["get", "hooks/in", "--reveal", "--field", "signing_key"];
    assert_eq!(cli.run(&[&other[..], &get[..]].concat()).ok().stdout.trim(), "whsec_app_2");
    let get = ["get", "partners/acme", "--reveal", "--field", "token"];
    assert_eq!(cli.run(&[&other[..], &get[..]].concat()).ok().stdout.trim(), "pt_acme");
}

#[tokio::test(flavor = "current_thread")]
async fn audit_query_shows_the_count_of_coalesced_reads_that_the_summary_adds_up() {
    let cli = Cli::initialized("audit-count");
    // The application audits to the trail `cred` reads: beside the store.
    let path = cli.store.strip_prefix("sqlite:").unwrap();
    let app = Manager::builder()
        .store(SqliteStore::open(path).await.unwrap())
        .key_ring(KeyRing::from_file(&cli.key_file).unwrap())
        .audit(credential::audit::JsonlAuditSink::open(format!("{path}.audit.jsonl")).unwrap())
        .build()
        .await
        .unwrap();
    let hook = Webhook { signing_key: "whsec_counted".into(), url: "https://h.example".into() };
    app.create("hooks/in", hook).await.unwrap().activate().await.unwrap();
    let ctx = app.context(Principal::named("app"));
    for _ in 0..5 {
        ctx.get::<Webhook>("hooks/in").await.unwrap();
    }
    app.shutdown().await.unwrap();

    let reads = cli.run(&["--json", "audit", "query", "--action", "read"]).ok().json();
    let counted: u64 =
        reads.as_array().unwrap().iter().map(|read| read["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 5);
    let table = cli.run(&["audit", "query", "--action", "read"]).ok();
    assert!(table.stdout.lines().next().unwrap().contains("COUNT"), "{table:?}");
    let summary = cli.run(&["--json", "audit", "summary", "--action", "read"]).ok().json();
    assert_eq!(summary["by_credential"]["hooks/in"], 5);
}
