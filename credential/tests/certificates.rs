//! Certificates generated at test time with `openssl`: expiry from notAfter, key matching for RSA
//! and EC keys in every PEM form, chains, and refusal of anything else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::Command;

use credential::kinds::Certificate;
use credential::prelude::*;
use support::scratch_dir;

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl must be installed");
    assert!(status.success(), "openssl {args:?}");
}

/// A self-signed certificate valid for `days`, with its PKCS#8 key: (cert PEM, key PEM).
fn self_signed(dir: &Path, name: &str, key_args: &[&str], days: &str) -> (String, String) {
    let (key, cert) = (format!("{name}.key"), format!("{name}.crt"));
    let mut args = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        days,
        "-subj",
        "/CN=credential.test",
        "-keyout",
        &key,
        "-out",
        &cert,
    ];
    args.extend_from_slice(key_args);
    openssl(dir, &args);
    (
        std::fs::read_to_string(dir.join(&cert)).unwrap(),
        std::fs::read_to_string(dir.join(&key)).unwrap(),
    )
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

#[test]
fn expiry_comes_from_the_leaf_not_after() {
    if !support::tools::installed(&[("openssl", "openssl")]) {
        return;
    }
    let dir = scratch_dir("cert-expiry");
    let (cert, key) = self_signed(&dir, "rsa", &["-newkey", "rsa:2048"], "30");
    let certificate = Certificate::new(cert, key.into()).unwrap();
    let expires = certificate.expires_at().unwrap();
    let expected = Utc::now() + chrono::Duration::days(30);
    assert!((expires - expected).num_minutes().abs() < 10, "{expires}");
    assert_eq!(certificate.not_after().unwrap(), expires);
}

#[test]
fn rsa_and_ec_keys_match_their_certificates_in_every_pem_form() {
    if !support::tools::installed(&[("openssl", "openssl")]) {
        return;
    }
    let dir = scratch_dir("cert-forms");
    let (rsa_cert, rsa_key) = self_signed(&dir, "rsa", &["-newkey", "rsa:2048"], "5");
    openssl(&dir, &["rsa", "-in", "rsa.key", "-traditional", "-out", "rsa-pkcs1.key"]);
    let (ec_cert, ec_key) = self_signed(
        &dir,
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        "5",
    );
    openssl(&dir, &["ec", "-in", "ec.key", "-out", "ec-sec1.key"]);
    assert!(read(&dir, "rsa-pkcs1.key").contains("BEGIN RSA PRIVATE KEY"));
    assert!(read(&dir, "ec-sec1.key").contains("BEGIN EC PRIVATE KEY"));
    for (cert, key) in [
        (&rsa_cert, rsa_key.clone()),
        (&rsa_cert, read(&dir, "rsa-pkcs1.key")),
        (&ec_cert, ec_key.clone()),
        (&ec_cert, read(&dir, "ec-sec1.key")),
    ] {
        Certificate::new(cert.clone(), key.into()).unwrap().validate().unwrap();
    }
    // Keys swapped between certificates do not match.
    for (cert, key) in [(&rsa_cert, &ec_key), (&ec_cert, &rsa_key)] {
        let errors =
            Certificate::new(cert.clone(), key.clone().into()).unwrap().validate().unwrap_err();
        assert_eq!(
            errors.iter().map(|e| (e.field(), e.rule())).collect::<Vec<_>>(),
            [("private_key", "matches_certificate")]
        );
    }
    let (_, other_rsa_key) = self_signed(&dir, "rsa2", &["-newkey", "rsa:2048"], "5");
    let errors = Certificate::new(rsa_cert, other_rsa_key.into()).unwrap().validate().unwrap_err();
    assert!(!errors.to_string().contains("PRIVATE KEY"));
    assert_eq!(errors.len(), 1);
}

#[test]
fn chains_are_validated_whole_and_the_leaf_comes_first() {
    if !support::tools::installed(&[("openssl", "openssl")]) {
        return;
    }
    let dir = scratch_dir("cert-chain");
    let (leaf, key) = self_signed(
        &dir,
        "leaf",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        "10",
    );
    let (ca, _) = self_signed(
        &dir,
        "ca",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        "3650",
    );
    let chain = format!("{leaf}{ca}");
    let certificate = Certificate::new(chain.clone(), key.clone().into()).unwrap();
    certificate.validate().unwrap();
    assert!(certificate.expires_at().unwrap() < Utc::now() + chrono::Duration::days(11));
    let broken = format!("{leaf}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let errors = Certificate { chain: broken, private_key: key.into(), expires: None }
        .validate()
        .unwrap_err();
    assert_eq!(errors.iter().map(|e| e.field()).collect::<Vec<_>>(), ["chain"]);
}

#[test]
fn anything_else_is_refused_without_echoing_the_key() {
    if !support::tools::installed(&[("openssl", "openssl")]) {
        return;
    }
    assert!(Certificate::new("not pem".into(), "k".into()).is_err());
    let dir = scratch_dir("cert-garbage");
    let (cert, key) = self_signed(&dir, "rsa", &["-newkey", "rsa:2048"], "5");
    let garbage = Certificate {
        chain: cert,
        private_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
        expires: None,
    };
    let errors = garbage.validate().unwrap_err();
    assert_eq!(errors.iter().map(|e| e.field()).collect::<Vec<_>>(), ["private_key"]);
    let shown =
        format!("{:?} {}", Certificate::new(read(&dir, "rsa.crt"), key.into()).unwrap(), errors);
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}

#[tokio::test]
async fn certificates_round_trip_through_the_manager_and_expire() {
    if !support::tools::installed(&[("openssl", "openssl")]) {
        return;
    }
    let dir = scratch_dir("cert-manager");
    let (cert, key) = self_signed(
        &dir,
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        "5",
    );
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .build()
        .await
        .unwrap();
    manager
        .create("tls/api", Certificate::new(cert.clone(), key.clone().into()).unwrap())
        .await
        .unwrap()
        .activate()
        .await
        .unwrap();
    let ctx = manager.context(Principal::new("workflow/serve", "action/tls"));
    let back = ctx.get::<Certificate>("tls/api").await.unwrap();
    assert_eq!(
        (back.chain.as_str(), back.private_key.expose_secret()),
        (cert.as_str(), key.as_str())
    );
    let history = manager.list(&credential::ListFilter::all()).await.unwrap();
    assert!(history[0].expires_at.is_some());
}
