//! SSH keys generated at test time with `ssh-keygen`: parsed, passphrase-checked, stored and read
//! back, and never shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::process::Command;

use credential::kinds::SshKey;
use credential::prelude::*;
use support::scratch_dir;

/// A fresh key of `kind` (`ed25519`, `rsa`) encrypted with `passphrase` (empty: none), and its
/// public key line.
fn generate(name: &str, kind: &str, passphrase: &str) -> (String, String) {
    generate_as(name, kind, passphrase, "RFC4716")
}

/// As [`generate`], written in `format` (`RFC4716`: OpenSSH, `PEM`, `PKCS8`).
fn generate_as(name: &str, kind: &str, passphrase: &str, format: &str) -> (String, String) {
    let dir = scratch_dir(&format!("ssh-{name}"));
    let path = dir.join("key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-m", format, "-C", "test@credential", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen must be installed (openssh-client)");
    assert!(status.success());
    let private = std::fs::read_to_string(&path).unwrap();
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (private, public)
}

#[test]
fn unencrypted_keys_parse_and_show_their_public_half() {
    if !support::tools::installed(&[("ssh-keygen", "openssh-client")]) {
        return;
    }
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let (private, public) = generate(&format!("plain-{kind}"), kind, "");
        let key = SshKey { private_key: private.clone().into(), passphrase: None };
        key.validate().unwrap();
        let derived = key.public_key().unwrap();
        assert_eq!(
            derived.split(' ').take(2).collect::<Vec<_>>(),
            public.split(' ').take(2).collect::<Vec<_>>()
        );
        assert!(key.fingerprint().unwrap().starts_with("SHA256:"));
        let shown = format!("{key:?} {}", key.redacted());
        assert!(!shown.contains("OPENSSH PRIVATE KEY"), "{shown}");
    }
}

#[test]
fn encrypted_keys_need_the_right_passphrase() {
    if !support::tools::installed(&[("ssh-keygen", "openssh-client")]) {
        return;
    }
    let (private, _) = generate("encrypted", "ed25519", "correct horse");
    let with = |passphrase: Option<&str>| SshKey {
        private_key: private.clone().into(),
        passphrase: passphrase.map(Into::into),
    };
    with(Some("correct horse")).validate().unwrap();
    let missing = with(None).validate().unwrap_err();
    assert_eq!(
        missing.iter().map(|e| (e.field(), e.rule())).collect::<Vec<_>>(),
        [("passphrase", "required")]
    );
    let wrong = with(Some("battery staple")).validate().unwrap_err();
    assert_eq!(
        wrong.iter().map(|e| (e.field(), e.rule())).collect::<Vec<_>>(),
        [("passphrase", "decrypts")]
    );
    assert!(!wrong.to_string().contains("battery"));
}

#[test]
fn unencrypted_pem_keys_parse_and_encrypted_ones_are_refused() {
    if !support::tools::installed(&[("ssh-keygen", "openssh-client")]) {
        return;
    }
    for (kind, format, label) in [
        ("rsa", "PEM", "BEGIN RSA PRIVATE KEY"),
        ("rsa", "PKCS8", "BEGIN PRIVATE KEY"),
        ("ecdsa", "PEM", "BEGIN EC PRIVATE KEY"),
        ("ecdsa", "PKCS8", "BEGIN PRIVATE KEY"),
    ] {
        let (private, _) = generate_as(&format!("pem-{kind}-{format}"), kind, "", format);
        assert!(private.contains(label), "{kind} {format}");
        SshKey { private_key: private.into(), passphrase: None }.validate().unwrap();
    }
    let (encrypted, _) = generate_as("pem-encrypted", "rsa", "secret", "PEM");
    let errors = SshKey { private_key: encrypted.into(), passphrase: Some("secret".into()) }
        .validate()
        .unwrap_err();
    assert_eq!(errors.iter().map(|e| e.field()).collect::<Vec<_>>(), ["private_key"]);
}

#[test]
fn anything_else_is_refused() {
    for text in [
        "",
        "not a key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    ] {
        let key = SshKey { private_key: text.into(), passphrase: None };
        let errors = key.validate().unwrap_err();
        assert_eq!(errors.iter().next().map(|e| e.field()), Some("private_key"));
    }
}

#[tokio::test]
async fn keys_round_trip_through_the_manager() {
    if !support::tools::installed(&[("ssh-keygen", "openssh-client")]) {
        return;
    }
    let (private, _) = generate("manager", "ed25519", "pw");
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .build()
        .await
        .unwrap();
    let key = SshKey { private_key: private.clone().into(), passphrase: Some("pw".into()) };
    manager.create("deploy/ssh", key).await.unwrap().activate().await.unwrap();
    let ctx = manager.context(Principal::new("workflow/deploy", "action/push"));
    let back = ctx.get::<SshKey>("deploy/ssh").await.unwrap();
    assert_eq!(back.private_key.expose_secret(), private);
    assert_eq!(ctx.resolve("{{deploy/ssh.passphrase}}").await.unwrap().expose_secret(), "pw");
}
