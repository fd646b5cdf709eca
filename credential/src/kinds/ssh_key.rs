//! SSH private keys in the OpenSSH format.

use secrecy::{ExposeSecret, SecretString};

use crate::{self as credential, ValidationErrors};

/// An SSH private key with its passphrase when it is encrypted.
///
/// Validation parses the key. OpenSSH-format keys (`-----BEGIN OPENSSH PRIVATE KEY-----`, Ed25519,
/// ECDSA and RSA) may be encrypted: the passphrase must then decrypt them. PEM keys (PKCS#1 `RSA PRIVATE
/// KEY`, SEC1 `EC PRIVATE KEY`, PKCS#8 `PRIVATE KEY`) are accepted unencrypted; an encrypted PEM key
/// is refused (re-encrypt it in the OpenSSH format with `ssh-keygen -p -f <key>`). Fingerprint and
/// public key are available for OpenSSH-format keys.
///
/// ```no_run
/// use credential::kinds::SshKey;
/// use credential::Credential;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let key = SshKey { private_key: std::fs::read_to_string("id_ed25519")?.into(), passphrase: None };
/// key.validate()?;
/// println!("{}", key.fingerprint().unwrap_or_default());
/// # Ok(())
/// # }
/// ```
#[derive(credential::Credential)]
#[credential(kind = "ssh_key", crate = "crate", validate = key_opens)]
pub struct SshKey {
    /// The private key, OpenSSH format.
    #[secret]
    pub private_key: SecretString,
    /// The passphrase of an encrypted key.
    #[secret]
    pub passphrase: Option<SecretString>,
}

const OPENSSH_LABEL: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";

fn key_opens(key: &SshKey) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let text = key.private_key.expose_secret();
    if !text.trim_start().starts_with(OPENSSH_LABEL) {
        if super::pem_key::private_key_info(text).is_err() {
            errors.add(
                "private_key",
                "ssh_key",
                "must be an OpenSSH private key or an unencrypted PEM (PKCS#1, SEC1, PKCS#8) private key",
            );
        }
        return errors.into_result();
    }
    match ssh_key::PrivateKey::from_openssh(text) {
        Err(_) => errors.add(
            "private_key",
            "ssh_key",
            "must be an OpenSSH private key (Ed25519, ECDSA or RSA)",
        ),
        Ok(parsed) if parsed.is_encrypted() => match &key.passphrase {
            None => errors.add("passphrase", "required", "is required: the key is encrypted"),
            Some(passphrase) if parsed.decrypt(passphrase.expose_secret()).is_err() => {
                errors.add("passphrase", "decrypts", "does not decrypt the key");
            }
            Some(_) => {}
        },
        Ok(_) => {}
    }
    errors.into_result()
}

impl SshKey {
    /// The key's SHA-256 fingerprint (`SHA256:…`, as `ssh-keygen -l` shows it), or `None` when
    /// the key does not parse.
    pub fn fingerprint(&self) -> Option<String> {
        let parsed = ssh_key::PrivateKey::from_openssh(self.private_key.expose_secret()).ok()?;
        Some(parsed.fingerprint(ssh_key::HashAlg::Sha256).to_string())
    }

    /// The public key as an `authorized_keys` line, or `None` when the key does not parse.
    pub fn public_key(&self) -> Option<String> {
        let parsed = ssh_key::PrivateKey::from_openssh(self.private_key.expose_secret()).ok()?;
        parsed.public_key().to_openssh().ok()
    }
}
