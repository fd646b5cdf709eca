//! Master keys from environment variables, key files and passphrases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support;
use credential::hazmat::{self, SealContext};

use support::scratch_dir;

use credential::crypto::{KdfParams, KdfSettings, MasterKey};
use credential::{Error, ExposeSecret, KeyRing, SecretString};

const ENV_VAR: &str = "CREDENTIAL_TEST_MASTER_KEY";

/// Runs one `#[ignore]`d test of this binary in a child process with `ENV_VAR` set to `value`
/// (setting variables in this process would race with other tests).
fn run_child_with_env(test: &str, value: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            support::test_named(module_path!(), test).as_str(),
            "--ignored",
            "--nocapture",
        ])
        .env(ENV_VAR, value)
        .output()
        .unwrap()
}

#[test]
#[ignore = "run by key_from_environment_variable in a child process"]
fn child_reads_key_from_env() {
    match KeyRing::from_env(ENV_VAR) {
        Ok(ring) => println!("KEY_ID={}", ring.current_id()),
        Err(error) => println!("ERROR={error}"),
    }
}

#[test]
fn key_from_environment_variable() {
    let key = MasterKey::generate().unwrap();
    let output = run_child_with_env("child_reads_key_from_env", key.to_base64().expose_secret());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("KEY_ID={}", key.id())), "{stdout}");

    let output = run_child_with_env("child_reads_key_from_env", "c2hvcnQ=");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ERROR=master key from environment variable `CREDENTIAL_TEST_MASTER_KEY` is unusable: decodes to 5 bytes, expected 32"),
        "{stdout}"
    );
    assert!(!stdout.contains("c2hvcnQ"));
}

#[test]
fn unset_environment_variable_is_a_clear_error() {
    let error = KeyRing::from_env("CREDENTIAL_TEST_VARIABLE_THAT_IS_NOT_SET").unwrap_err();
    assert!(error.to_string().ends_with("is not set"), "{error}");
}

#[test]
fn key_file_round_trips_and_is_created_private() {
    let dir = scratch_dir("write");
    let path = dir.join("master.key");
    let key = MasterKey::generate().unwrap();
    key.write_file(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(KeyRing::from_file(&path).unwrap().current_id(), key.id());
    // Never overwritten.
    assert!(matches!(MasterKey::generate().unwrap().write_file(&path), Err(Error::Io { .. })));
}

#[test]
fn group_or_world_readable_key_file_is_refused() {
    let dir = scratch_dir("perms");
    let path = dir.join("master.key");
    MasterKey::generate().unwrap().write_file(&path).unwrap();
    for mode in [0o640, 0o604, 0o660, 0o644] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        match KeyRing::from_file(&path) {
            Err(Error::InsecurePermissions { mode: found, .. }) => assert_eq!(found, mode),
            other => panic!("mode {mode:o} accepted: {other:?}"),
        }
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(KeyRing::from_file(&path).is_ok());
}

#[test]
fn raw_32_byte_key_file_is_accepted_and_other_sizes_refused() {
    let dir = scratch_dir("raw");
    let raw = dir.join("raw.key");
    std::fs::write(&raw, [7u8; 32]).unwrap();
    std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(KeyRing::from_file(&raw).is_ok());
    let short = dir.join("short.key");
    std::fs::write(&short, [7u8; 31]).unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(KeyRing::from_file(&short), Err(Error::InvalidMasterKey { .. })));
    assert!(matches!(KeyRing::from_file(dir.join("missing.key")), Err(Error::Io { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_key_rederives_from_stored_settings() {
    let params = KdfParams::new(KdfParams::MIN_MEMORY_KIB, 1, 1).unwrap();
    let stored = KdfSettings::generate(params).unwrap().to_string();
    let passphrase = SecretString::from("correct horse battery staple");
    let ring = KeyRing::from_passphrase(passphrase.clone(), stored.parse().unwrap()).await.unwrap();
    let context = SealContext::new("db/main", 1, "database");
    let sealed = hazmat::seal(&ring, &context, b"payload").unwrap();

    let again = KeyRing::from_passphrase(passphrase, stored.parse().unwrap()).await.unwrap();
    assert_eq!(&*hazmat::open(&again, &context, &sealed).unwrap(), b"payload");

    let wrong = KeyRing::from_passphrase(SecretString::from("wrong"), stored.parse().unwrap())
        .await
        .unwrap();
    assert!(matches!(wrong.check(ring.current_id()), Err(Error::WrongMasterKey { .. })));
}

#[test]
fn passphrase_key_derives_outside_a_runtime_too() {
    let params = KdfParams::new(KdfParams::MIN_MEMORY_KIB, 1, 1).unwrap();
    let settings = KdfSettings::generate(params).unwrap();
    let ring = futures_lite_block_on(KeyRing::from_passphrase(SecretString::from("pw"), settings));
    assert!(ring.is_ok());
}

/// Polls a future that never waits on I/O to completion without a runtime.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}
