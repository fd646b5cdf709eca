//! The masker end to end: a manager masks exactly what it served (typed reads, templates, reveals,
//! rotations), in every form, through `mask`, the writer, the async writer and the tracing writer,
//! and keeps masking after a rotation and a revoke.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64ct::{Base64, Base64Unpadded, Base64Url, Base64UrlUnpadded, Encoding};
use credential::kinds::BasicAuth;
use credential::masking::{MASK, MIN_MASKED_LEN, Masker};
use credential::prelude::*;
use credential::store::Store;
use tokio::io::AsyncWriteExt;

/// A password with characters that percent-encoding and JSON escape.
const CANARY: &str = "CANARY-mask/\"p@ss w+rd\"";
const USER: &str = "svc-app";

/// Every form an action is likely to write the canary in.
fn forms() -> Vec<(&'static str, String)> {
    let component: String = CANARY
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    let json = serde_json::to_string(CANARY).unwrap();
    vec![
        ("as is", CANARY.to_owned()),
        ("base64", Base64::encode_string(CANARY.as_bytes())),
        ("base64 unpadded", Base64Unpadded::encode_string(CANARY.as_bytes())),
        ("base64url", Base64Url::encode_string(CANARY.as_bytes())),
        ("base64url unpadded", Base64UrlUnpadded::encode_string(CANARY.as_bytes())),
        ("percent-encoded", component),
        ("JSON-escaped", json[1..json.len() - 1].to_owned()),
        ("Basic auth", Base64::encode_string(format!("{USER}:{CANARY}").as_bytes())),
    ]
}

/// A line an action might log with `form` in it, and the line as it must come out.
fn line(form: &str) -> (String, String) {
    (
        format!("GET https://api.example/?q={form} 200\n"),
        format!("GET https://api.example/?q={MASK} 200\n"),
    )
}

struct Fleet {
    store: Arc<MemoryStore>,
    ring: KeyRing,
}

impl Fleet {
    /// A store holding the canary as an active Basic auth credential, written by a manager that
    /// is then dropped.
    async fn new() -> Self {
        let fleet =
            Self { store: Arc::new(MemoryStore::new()), ring: KeyRing::generate().unwrap() };
        let writer = fleet.manager().await;
        let basic = BasicAuth { username: USER.into(), password: CANARY.into() };
        writer.create("db/primary", basic).await.unwrap().activate().await.unwrap();
        fleet
    }

    /// Another manager on the same store, as another process would have.
    async fn manager(&self) -> Manager {
        let store: Arc<dyn Store> = self.store.clone();
        Manager::builder().store(store).key_ring(self.ring.clone()).build().await.unwrap()
    }
}

fn ctx(manager: &Manager) -> credential::Context {
    manager.context(Principal::new("workflow/sync", "action/fetch"))
}

fn assert_unmasked(masker: &Masker) {
    for (name, form) in forms() {
        assert_eq!(masker.mask(&form), form, "{name} masked before it was served");
    }
}

fn assert_masked(masker: &Masker) {
    for (name, form) in forms() {
        let (line, masked) = line(&form);
        assert_eq!(masker.mask(&line), masked, "{name} through mask");
    }
}

#[tokio::test]
async fn a_manager_masks_every_form_of_what_a_typed_read_served_and_nothing_before() {
    let fleet = Fleet::new().await;
    let manager = fleet.manager().await;
    assert_unmasked(manager.masker());
    let basic = ctx(&manager).get::<BasicAuth>("db/primary").await.unwrap();
    assert_eq!(basic.password.expose_secret(), CANARY);
    assert_masked(manager.masker());
    // Clones share what they know.
    assert_masked(&manager.masker().clone());
}

#[tokio::test]
async fn templates_and_reveals_teach_the_masker_too() {
    let fleet = Fleet::new().await;
    let resolving = fleet.manager().await;
    ctx(&resolving).resolve("{{db/primary.password}}").await.unwrap();
    assert_masked(resolving.masker());

    let revealing = fleet.manager().await;
    assert_unmasked(revealing.masker());
    revealing.load_dyn("db/primary").await.unwrap().reveal().await.unwrap();
    assert_masked(revealing.masker());
}

#[tokio::test]
async fn after_a_rotation_and_a_revoke_old_and_new_values_stay_masked() {
    let fleet = Fleet::new().await;
    let manager = fleet.manager().await;
    ctx(&manager).get::<BasicAuth>("db/primary").await.unwrap();
    let next = "CANARY-rotated-4b1d9e";
    let active = manager.load::<BasicAuth>("db/primary").await.unwrap().into_active().unwrap();
    let rotating =
        active.rotate(BasicAuth { username: USER.into(), password: next.into() }).await.unwrap();
    let active = rotating.commit().await.unwrap();
    assert_eq!(manager.masker().mask(&format!("{CANARY} {next}")), "*** ***");
    active.revoke("rotated away and retired").await.unwrap();
    assert_eq!(manager.masker().mask(&format!("{CANARY} {next}")), "*** ***");
    assert_masked(manager.masker());
}

#[tokio::test]
async fn the_writers_mask_every_form_across_write_boundaries() {
    let fleet = Fleet::new().await;
    let manager = fleet.manager().await;
    ctx(&manager).get::<BasicAuth>("db/primary").await.unwrap();
    let masker = manager.masker();
    for (name, form) in forms() {
        let (line, masked) = line(&form);
        let middle = line.find(&form).unwrap() + form.len() / 2;

        let mut writer = masker.writer(Vec::new());
        writer.write_all(&line.as_bytes()[..middle]).unwrap();
        writer.write_all(&line.as_bytes()[middle..]).unwrap();
        assert_eq!(String::from_utf8(writer.into_inner().unwrap()).unwrap(), masked, "{name}");

        let mut writer = masker.async_writer(Vec::new());
        writer.write_all(&line.as_bytes()[..middle]).await.unwrap();
        writer.write_all(&line.as_bytes()[middle..]).await.unwrap();
        writer.flush().await.unwrap();
        assert!(!String::from_utf8_lossy(writer.get_ref()).contains(&form[form.len() / 2..]));
        writer.shutdown().await.unwrap();
        assert_eq!(String::from_utf8(writer.into_inner()).unwrap(), masked, "{name}, async");
    }
}

#[tokio::test]
async fn a_child_process_echoing_its_environment_is_masked_on_its_way_to_the_log() {
    let fleet = Fleet::new().await;
    let manager = fleet.manager().await;
    let basic = ctx(&manager).get::<BasicAuth>("db/primary").await.unwrap();
    let child = std::process::Command::new("sh")
        .args(["-c", "echo \"connecting with $DB_PASSWORD\"; env | grep DB_PASSWORD"])
        .env("DB_PASSWORD", basic.password.expose_secret())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&child.stdout).contains(CANARY));
    let mut log = manager.masker().async_writer(Vec::new());
    for chunk in child.stdout.chunks(5) {
        log.write_all(chunk).await.unwrap();
    }
    log.shutdown().await.unwrap();
    let log = String::from_utf8(log.into_inner()).unwrap();
    assert_eq!(log, "connecting with ***\nDB_PASSWORD=***\n");
}

/// A writer into a buffer shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_careless_log_event_comes_out_masked_through_the_tracing_writer() {
    let fleet = Fleet::new().await;
    let manager = fleet.manager().await;
    let basic = ctx(&manager).get::<BasicAuth>("db/primary").await.unwrap();
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(manager.masker().make_writer(move || sink.clone()))
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for (_, form) in forms() {
            tracing::info!(url = %format!("https://{USER}@db.example/?p={form}"), "connecting");
        }
        let password = basic.password.expose_secret();
        tracing::warn!("login failed for {USER} with password {password}");
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(log.matches(MASK).count(), forms().len() + 1, "{log}");
    for (name, form) in forms() {
        assert!(!log.contains(&form), "{name} in the log: {log}");
    }
    assert!(log.contains("login failed for svc-app with password ***"), "{log}");
}

#[tokio::test]
async fn the_masker_and_its_writers_show_no_value_in_their_debug_output() {
    let fleet = Fleet::new().await;
    let manager = fleet.manager().await;
    ctx(&manager).get::<BasicAuth>("db/primary").await.unwrap();
    let masker = manager.masker();
    let mut writer = masker.writer(Vec::new());
    writer.write_all(&CANARY.as_bytes()[..CANARY.len() - 1]).unwrap();
    let async_writer = masker.async_writer(Vec::<u8>::new());
    for debug in [format!("{masker:?}"), format!("{writer:?}"), format!("{async_writer:?}")] {
        assert!(!debug.contains("CANARY"), "{debug}");
        assert!(!debug.contains(&Base64::encode_string(CANARY.as_bytes())[..8]), "{debug}");
    }
}

#[tokio::test]
async fn values_shorter_than_the_line_are_left_alone() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let manager = Manager::builder().store(store).key_ring(KeyRing::generate().unwrap());
    let manager = manager.build().await.unwrap();
    let short = "x".repeat(MIN_MASKED_LEN - 1);
    let basic = BasicAuth { username: "admin".into(), password: short.as_str().into() };
    manager.create("db/dev", basic).await.unwrap().activate().await.unwrap();
    ctx(&manager).get::<BasicAuth>("db/dev").await.unwrap();
    assert!(manager.masker().is_empty());
    assert_eq!(manager.masker().mask(&format!("pw={short}")), format!("pw={short}"));
}
