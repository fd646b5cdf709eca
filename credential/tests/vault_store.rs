//! `VaultStore` and `TransitKeyRing` against a real OpenBao (the Vault API): the conformance
//! suite, two managers on one mount, the transit key ring across a process restart and a transit
//! key rotation, AppRole logins, a wrong token, a missing mount, a sealed and a stopped server,
//! and what the server holds (inspected with the `bao` tool): never the canary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use crate::support;

use std::process::Command;
use std::sync::Arc;

use base64ct::{Base64, Encoding};
use credential::kinds::ApiKey;
use credential::store::{Precondition, Store, TransitKeyRing, VaultStore, conformance};
use credential::{Error, ExposeSecret, KeyRing, Manager, Principal, SecretString};
use support::vault::{Bao, BaoServer};

const CANARY: &str = "sk_live_VAULT_CANARY_5d2e";

async fn store(bao: &Bao, mount: &str) -> VaultStore {
    VaultStore::builder(&bao.address)
        .token(SecretString::from(bao.token.as_str()))
        .mount(mount)
        .connect()
        .await
        .unwrap()
}

async fn manager(store: VaultStore, ring: KeyRing) -> Manager {
    Manager::builder().store(store).key_ring(ring).build().await.unwrap()
}

async fn read(manager: &Manager, id: &str) -> credential::Result<String> {
    let key = manager.context(Principal::named("reader")).get::<ApiKey>(id).await?;
    Ok(key.key.expose_secret().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conforms() {
    let Some(bao) = Bao::shared("conforms") else { return };
    let mount = bao.kv_mount("conforms");
    conformance::run_all(Arc::new(store(&bao, &mount.path).await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_mount_lose_no_update() {
    let Some(bao) = Bao::shared("two_stores") else { return };
    let mount = bao.kv_mount("two-stores");
    let stores: Vec<Arc<dyn Store>> =
        vec![Arc::new(store(&bao, &mount.path).await), Arc::new(store(&bao, &mount.path).await)];
    let counter = conformance::sample_record("shared/counter", "counter", &0u64.to_be_bytes());
    stores[0].put(counter, Precondition::Absent).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let store = Arc::clone(&stores[task % 2]);
            tokio::spawn(async move {
                conformance::increment(store.as_ref(), "shared/counter", 25).await
            })
        })
        .collect();
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let record = stores[0].get("shared/counter").await.unwrap().unwrap();
    assert_eq!(conformance::counter_value(&record), 200, "no increment lost");
    assert!(conflicts > 0, "eight writers on one record met");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_on_one_mount_detect_the_conflict() {
    let Some(bao) = Bao::shared("two_managers") else { return };
    let mount = bao.kv_mount("two-managers");
    let ring = KeyRing::generate().unwrap();
    let first = manager(store(&bao, &mount.path).await, ring.clone()).await;
    let second = manager(store(&bao, &mount.path).await, ring).await;
    first.create("svc/api", ApiKey::new("v1".into())).await.unwrap().activate().await.unwrap();
    let mine = first.load::<ApiKey>("svc/api").await.unwrap().into_active().unwrap();
    let theirs = second.load::<ApiKey>("svc/api").await.unwrap().into_active().unwrap();
    theirs.rotate(ApiKey::new("theirs".into())).await.unwrap().commit().await.unwrap();
    let lost = mine.rotate(ApiKey::new("mine".into())).await.unwrap_err();
    assert!(matches!(lost, Error::Conflict { .. }), "{lost:?}");
    assert_eq!(read(&first, "svc/api").await.unwrap(), "theirs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_managers_revoke_and_commit_reach_a_cached_reader_within_100_ms() {
    let Some(bao) = Bao::shared("coherence") else { return };
    let mount = bao.kv_mount("coherence");
    let ring = KeyRing::generate().unwrap();
    let writer = manager(store(&bao, &mount.path).await, ring.clone()).await;
    // The default cache, five minutes: the store's journal tells the reader of the writer's
    // changes.
    let reader = manager(store(&bao, &mount.path).await, ring).await;
    for id in ["svc/rotated", "svc/revoked"] {
        writer.create(id, ApiKey::new("v1".into())).await.unwrap().activate().await.unwrap();
        assert_eq!(read(&reader, id).await.unwrap(), "v1");
    }
    assert_eq!(read(&reader, "svc/rotated").await.unwrap(), "v1");
    let rotated = writer.load::<ApiKey>("svc/rotated").await.unwrap().into_active().unwrap();
    rotated.rotate(ApiKey::new("v2".into())).await.unwrap().commit().await.unwrap();
    let revoked = writer.load::<ApiKey>("svc/revoked").await.unwrap().into_active().unwrap();
    revoked.revoke("leaked").await.unwrap();
    // The promise: every manager on the store within 100 ms.
    let changed_at = tokio::time::Instant::now();
    tokio::time::sleep_until(changed_at + std::time::Duration::from_millis(100)).await;
    assert_eq!(read(&reader, "svc/rotated").await.unwrap(), "v2");
    assert!(matches!(read(&reader, "svc/revoked").await, Err(Error::Revoked { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_journal_makes_other_managers_go_to_the_store() {
    let Some(bao) = Bao::shared("journal") else { return };
    let mount = bao.kv_mount("journal");
    let ring = KeyRing::generate().unwrap();
    let writer = manager(store(&bao, &mount.path).await, ring.clone()).await;
    let reader = Manager::builder()
        .store(store(&bao, &mount.path).await)
        .key_ring(ring)
        .cache(credential::CacheConfig::new(std::time::Duration::from_secs(3600), 100))
        .build()
        .await
        .unwrap();
    let active =
        writer.create("svc/api", ApiKey::new("v1".into())).await.unwrap().activate().await.unwrap();
    assert_eq!(read(&reader, "svc/api").await.unwrap(), "v1");
    // Someone writes over the journal: the reader's feed can no longer vouch for its cache.
    let journal = "credential/.journal";
    bao.run(&["kv", "put", &format!("-mount={}", mount.path), journal, "entries=garbled"]);
    let garbled_at = tokio::time::Instant::now();
    // Once a feed's lag and a poll have passed, the reader goes to the store: the revoke (which
    // could not be journaled either) is seen at once.
    let bound = credential::store::MAX_FEED_LAG + std::time::Duration::from_millis(40);
    tokio::time::sleep_until(garbled_at + bound).await;
    active.revoke("leaked").await.unwrap();
    assert!(matches!(read(&reader, "svc/api").await, Err(Error::Revoked { .. })));
}

/// Reads `VAULT_READ_ID` through a fresh store and transit key ring, as a process started after
/// the one that wrote it, and prints what it read. Does nothing when not started by the test
/// below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the test below"]
async fn reader_process() {
    let (Ok(mount), Ok(transit), Ok(id)) = (
        std::env::var("VAULT_READ_MOUNT"),
        std::env::var("VAULT_READ_TRANSIT"),
        std::env::var("VAULT_READ_ID"),
    ) else {
        return;
    };
    let bao = Bao::shared("reader_process").unwrap();
    let store = store(&bao, &mount).await;
    let ring = TransitKeyRing::new(&store, &transit, "master").load().await.unwrap();
    let manager = manager(store, ring).await;
    println!("@@READ {}", read(&manager, &id).await.unwrap());
}

fn read_in_another_process(mount: &str, transit: &str, id: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            support::test_named(module_path!(), "reader_process").as_str(),
            "--nocapture",
        ])
        .env("VAULT_READ_MOUNT", mount)
        .env("VAULT_READ_TRANSIT", transit)
        .env("VAULT_READ_ID", id)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout.lines().find_map(|line| line.strip_prefix("@@READ ")).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transit_key_ring_survives_a_restart_and_a_transit_key_rotation() {
    let Some(bao) = Bao::shared("transit") else { return };
    let mount = bao.kv_mount("transit-kv");
    let transit = bao.transit_mount("transit", "master");
    let kv = store(&bao, &mount.path).await;
    let keys = TransitKeyRing::new(&kv, &transit.path, "master");
    let manager = manager(kv, keys.load().await.unwrap()).await;
    for (id, value) in [("svc/a", "value-a"), ("svc/b", "value-b"), ("svc/c", CANARY)] {
        manager.create(id, ApiKey::new(value.into())).await.unwrap().activate().await.unwrap();
    }
    assert_eq!(read_in_another_process(&mount.path, &transit.path, "svc/a"), "value-a");

    keys.rotate_and_rewrap().await.unwrap();
    assert_eq!(keys.wrapping_versions().await.unwrap(), [2], "rewrapped under the new version");
    assert_eq!(read_in_another_process(&mount.path, &transit.path, "svc/b"), "value-b");
    assert_eq!(read_in_another_process(&mount.path, &transit.path, "svc/c"), CANARY);

    // A new data key, and the records moved to it: everything still opens.
    let ring = keys.add_data_key().await.unwrap();
    let moved = Manager::builder()
        .store(store(&bao, &mount.path).await)
        .key_ring(ring)
        .build()
        .await
        .unwrap();
    let report = moved.rekey(|_| {}).await.unwrap();
    assert_eq!(report.resealed, 3);
    assert_eq!(read_in_another_process(&mount.path, &transit.path, "svc/a"), "value-a");

    // What the server holds: the data keys only wrapped, the records only sealed.
    let wrapped = bao.run(&[
        "kv",
        "get",
        "-format=json",
        &format!("-mount={}", mount.path),
        "credential/.keyring/master",
    ]);
    assert!(wrapped.contains("vault:v2:"));
    let secret = bao.run(&[
        "kv",
        "get",
        "-format=json",
        &format!("-mount={}", mount.path),
        "credential/default/svc/c",
    ]);
    let metadata = bao.run(&[
        "kv",
        "metadata",
        "get",
        "-format=json",
        &format!("-mount={}", mount.path),
        "credential/default/svc/c",
    ]);
    assert!(metadata.contains("credential_kind") && metadata.contains("api_key"), "{metadata}");
    let json: serde_json::Value = serde_json::from_str(&secret).unwrap();
    let record = Base64::decode_vec(json["data"]["data"]["record"].as_str().unwrap()).unwrap();
    for seen in [secret.as_bytes(), metadata.as_bytes(), &record] {
        assert!(!seen.windows(CANARY.len()).any(|window| window == CANARY.as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_in_a_namespace_is_reached_through_it() {
    let Some(bao) = Bao::shared("namespace") else { return };
    let namespace = format!("credential-{}", std::process::id());
    bao.run(&["namespace", "create", &namespace]);
    let in_namespace = format!("-namespace={namespace}");
    bao.run(&["secrets", "enable", &in_namespace, "-version=2", "-path=kv", "kv"]);
    let connect = |namespace: Option<&str>| {
        let mut builder = VaultStore::builder(&bao.address)
            .token(SecretString::from(bao.token.as_str()))
            .mount("kv");
        if let Some(namespace) = namespace {
            builder = builder.namespace(namespace);
        }
        builder.connect()
    };
    let outside = connect(None).await.unwrap_err();
    let inside = connect(Some(&namespace)).await;
    if let Ok(store) = &inside {
        conformance::crud(store).await;
    }
    bao.run(&["secrets", "disable", &in_namespace, "kv"]);
    bao.run(&["namespace", "delete", &namespace]);
    assert!(outside.to_string().contains("no such mount"), "{outside}");
    inside.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_and_a_missing_mount_are_clear_errors() {
    let Some(bao) = Bao::shared("wrong_token") else { return };
    let mount = bao.kv_mount("wrong-token");
    let wrong_token = "hvs.not-the-token-4c1b";
    let refused = VaultStore::builder(&bao.address)
        .token(SecretString::from(wrong_token))
        .mount(&mount.path)
        .connect()
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("permission denied"), "{refused}");
    assert!(!refused.is_transient());
    assert!(!format!("{refused} {refused:?}").contains(wrong_token));

    let missing = VaultStore::builder(&bao.address)
        .token(SecretString::from(bao.token.as_str()))
        .mount("no-such-mount")
        .connect()
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no such mount"), "{missing}");
    assert!(!format!("{missing:?}").contains(&bao.token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_server_refuses_and_loses_nothing_and_a_stopped_one_is_unreachable() {
    let Some(shared) = Bao::shared("sealed") else { return };
    let mut server = BaoServer::start(&shared);
    let kv = store(&server.bao, "secret").await;
    let manager = manager(kv, KeyRing::generate().unwrap()).await;
    manager
        .create("svc/api", ApiKey::new("before".into()))
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();
    let active = manager.load::<ApiKey>("svc/api").await.unwrap().into_active().unwrap();

    server.bao.run(&["operator", "seal"]);
    let sealed = active.rotate(ApiKey::new("during".into())).await.unwrap_err();
    assert!(sealed.to_string().contains("sealed"), "{sealed}");
    assert!(sealed.is_transient());
    let unseal_key = server.unseal_key.clone();
    server.bao.run(&["operator", "unseal", &unseal_key]);
    assert_eq!(
        read(&manager, "svc/api").await.unwrap(),
        "before",
        "nothing lost, nothing half-written"
    );

    let address = server.bao.address.clone();
    server.stop();
    let stopped =
        VaultStore::builder(&address).token(SecretString::from("any")).connect().await.unwrap_err();
    assert!(stopped.to_string().contains("could not be reached"), "{stopped}");
    assert!(stopped.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approle_logs_in_and_logs_in_again_when_the_server_stops_honouring_its_token() {
    let Some(shared) = Bao::shared("approle") else { return };
    let server = BaoServer::start(&shared);
    let bao = &server.bao;
    bao.run(&["auth", "enable", "approle"]);
    let scratch = support::scratch_dir("approle");
    let policy = scratch.join("credential.hcl");
    std::fs::write(
        &policy,
        "path \"secret/*\" { capabilities = [\"create\", \"read\", \"update\", \"list\"] }\n",
    )
    .unwrap();
    bao.run(&["policy", "write", "credential", policy.to_str().unwrap()]);
    // Each token is good for three requests: the server refuses the fourth as it refuses an
    // expired token, so the store logs in again every few calls, without waiting out a TTL.
    bao.run(&[
        "write",
        "auth/approle/role/engine",
        "token_policies=credential",
        "token_num_uses=3",
    ]);
    let role_id = bao.run(&["read", "-field=role_id", "auth/approle/role/engine/role-id"]);
    let secret_id =
        bao.run(&["write", "-f", "-field=secret_id", "auth/approle/role/engine/secret-id"]);

    let kv = VaultStore::builder(&bao.address)
        .approle(role_id.trim(), SecretString::from(secret_id.trim()))
        .connect()
        .await
        .unwrap();
    let kv: Arc<dyn Store> = Arc::new(kv);
    conformance::crud(kv.as_ref()).await;
    for _ in 0..4 {
        assert!(kv.get("conformance/crud/one").await.unwrap().is_some());
    }
}
