//! Argon2id key derivation from a passphrase, with validated parameters and a stored salt.

use std::fmt;
use std::str::FromStr;

use argon2::{Algorithm, Argon2, Params, Version};
use base64ct::Encoding;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::master_key::MASTER_KEY_LEN;
use super::{MasterKey, random};
use crate::{Error, Result};

/// Argon2id cost parameters, validated on construction.
///
/// ```
/// use credential::crypto::KdfParams;
///
/// assert_eq!(KdfParams::default(), KdfParams::new(19_456, 2, 1)?);
/// assert!(KdfParams::new(1024, 2, 1).is_err()); // below MIN_MEMORY_KIB
/// # Ok::<(), credential::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl KdfParams {
    /// OWASP's recommended memory cost: 19 MiB.
    pub const DEFAULT_MEMORY_KIB: u32 = 19_456;
    /// OWASP's recommended number of passes with the default memory.
    pub const DEFAULT_ITERATIONS: u32 = 2;
    /// One lane.
    pub const DEFAULT_PARALLELISM: u32 = 1;
    /// Less memory than 8 MiB makes offline guessing cheap.
    pub const MIN_MEMORY_KIB: u32 = 8 * 1024;
    /// More than 4 GiB is refused, so hostile stored settings cannot exhaust memory.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// At least one pass.
    pub const MIN_ITERATIONS: u32 = 1;
    /// More passes than this is refused, so hostile stored settings cannot stall startup.
    pub const MAX_ITERATIONS: u32 = 64;
    /// At least one lane.
    pub const MIN_PARALLELISM: u32 = 1;
    /// At most 16 lanes.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Parameters with `memory_kib` KiB of memory, `iterations` passes and `parallelism` lanes.
    ///
    /// # Errors
    /// [`Error::InvalidKdf`] naming the limit that a value breaks.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self> {
        let invalid = |reason: String| Err(Error::InvalidKdf { reason });
        if !(Self::MIN_MEMORY_KIB..=Self::MAX_MEMORY_KIB).contains(&memory_kib) {
            return invalid(format!(
                "memory {memory_kib} KiB is outside {}..={} KiB",
                Self::MIN_MEMORY_KIB,
                Self::MAX_MEMORY_KIB
            ));
        }
        if !(Self::MIN_ITERATIONS..=Self::MAX_ITERATIONS).contains(&iterations) {
            return invalid(format!(
                "iterations {iterations} is outside {}..={}",
                Self::MIN_ITERATIONS,
                Self::MAX_ITERATIONS
            ));
        }
        if !(Self::MIN_PARALLELISM..=Self::MAX_PARALLELISM).contains(&parallelism) {
            return invalid(format!(
                "parallelism {parallelism} is outside {}..={}",
                Self::MIN_PARALLELISM,
                Self::MAX_PARALLELISM
            ));
        }
        Ok(Self { memory_kib, iterations, parallelism })
    }

    /// Memory cost in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Number of passes.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Number of lanes.
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            memory_kib: Self::DEFAULT_MEMORY_KIB,
            iterations: Self::DEFAULT_ITERATIONS,
            parallelism: Self::DEFAULT_PARALLELISM,
        }
    }
}

/// The salt and parameters of a passphrase-derived key: store them beside the data (they are not
/// secret) so the same passphrase derives the same key again.
///
/// The text form is `argon2id$v=19$m=19456,t=2,p=1$<salt, unpadded base64>`.
///
/// ```
/// use credential::crypto::{KdfParams, KdfSettings};
/// use credential::SecretString;
///
/// # fn main() -> credential::Result<()> {
/// let settings = KdfSettings::generate(KdfParams::new(8192, 1, 1)?)?;
/// let stored = settings.to_string();
/// let again: KdfSettings = stored.parse()?;
/// let passphrase = SecretString::from("correct horse battery staple");
/// assert_eq!(settings.derive_key(&passphrase)?.id(), again.derive_key(&passphrase)?.id());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdfSettings {
    params: KdfParams,
    salt: Vec<u8>,
}

impl KdfSettings {
    /// The salt length used by [`generate`](Self::generate).
    pub const SALT_LEN: usize = 16;
    /// The shortest salt accepted when parsing.
    pub const MIN_SALT_LEN: usize = 16;
    /// The longest salt accepted when parsing.
    pub const MAX_SALT_LEN: usize = 64;

    /// Settings with `params` and a fresh random salt.
    ///
    /// # Errors
    /// [`Error::RandomUnavailable`].
    pub fn generate(params: KdfParams) -> Result<Self> {
        let mut salt = vec![0u8; Self::SALT_LEN];
        random::fill_secret(&mut salt)?;
        Ok(Self { params, salt })
    }

    /// The cost parameters.
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// Derives the master key from `passphrase`. Blocks for as long as the parameters ask (about
    /// 30 ms with the defaults here); in async code use
    /// [`KeyRing::from_passphrase`](crate::KeyRing::from_passphrase), which moves it off the
    /// async workers.
    ///
    /// # Errors
    /// [`Error::InvalidKdf`] for an empty passphrase.
    pub fn derive_key(&self, passphrase: &SecretString) -> Result<MasterKey> {
        let passphrase = passphrase.expose_secret();
        if passphrase.is_empty() {
            return Err(Error::InvalidKdf { reason: "the passphrase is empty".to_owned() });
        }
        let params = Params::new(
            self.params.memory_kib,
            self.params.iterations,
            self.params.parallelism,
            Some(MASTER_KEY_LEN),
        )
        .map_err(|error| Error::InvalidKdf { reason: error.to_string() })?;
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), &self.salt, key.as_mut_slice())
            .map_err(|error| Error::InvalidKdf { reason: error.to_string() })?;
        Ok(MasterKey::from_bytes(key))
    }
}

impl fmt::Display for KdfSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let KdfParams { memory_kib, iterations, parallelism } = self.params;
        let salt = base64ct::Base64Unpadded::encode_string(&self.salt);
        write!(f, "argon2id$v=19$m={memory_kib},t={iterations},p={parallelism}${salt}")
    }
}

impl FromStr for KdfSettings {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidKdf {
            reason: "expected `argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>`".to_owned(),
        };
        let mut parts = text.trim().split('$');
        let (Some("argon2id"), Some("v=19"), Some(costs), Some(salt), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let mut costs = costs.split(',');
        let mut cost = |name: &str| {
            costs
                .next()
                .and_then(|pair| pair.strip_prefix(name))
                .and_then(|value| value.parse::<u32>().ok())
                .ok_or_else(invalid)
        };
        let params = KdfParams::new(cost("m=")?, cost("t=")?, cost("p=")?)?;
        if costs.next().is_some() {
            return Err(invalid());
        }
        let salt = base64ct::Base64Unpadded::decode_vec(salt).map_err(|_| invalid())?;
        if !(Self::MIN_SALT_LEN..=Self::MAX_SALT_LEN).contains(&salt.len()) {
            return Err(Error::InvalidKdf {
                reason: format!(
                    "salt of {} bytes is outside {}..={}",
                    salt.len(),
                    Self::MIN_SALT_LEN,
                    Self::MAX_SALT_LEN
                ),
            });
        }
        Ok(Self { params, salt })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> KdfParams {
        KdfParams::new(KdfParams::MIN_MEMORY_KIB, 1, 1).unwrap()
    }

    #[test]
    fn settings_round_trip_through_text() {
        let settings = KdfSettings::generate(fast()).unwrap();
        assert_eq!(settings.to_string().parse::<KdfSettings>().unwrap(), settings);
        assert!(settings.to_string().starts_with("argon2id$v=19$m=8192,t=1,p=1$"));
    }

    #[test]
    fn malformed_settings_are_refused() {
        for text in [
            "",
            "argon2i$v=19$m=8192,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2id$v=16$m=8192,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2id$v=19$t=1,m=8192,p=1$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2id$v=19$m=8192,t=1,p=1,x=2$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2id$v=19$m=8192,t=1,p=1$AAAA",
            "argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2id$v=19$m=8192,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$extra",
        ] {
            assert!(text.parse::<KdfSettings>().is_err(), "{text}");
        }
    }

    #[test]
    fn same_passphrase_and_salt_derive_the_same_key() {
        let settings = KdfSettings::generate(fast()).unwrap();
        let passphrase = SecretString::from("correct horse battery staple");
        let first = settings.derive_key(&passphrase).unwrap();
        let second = settings.derive_key(&passphrase).unwrap();
        assert_eq!(first.id(), second.id());
        let other = settings.derive_key(&SecretString::from("Tr0ub4dor&3")).unwrap();
        assert_ne!(first.id(), other.id());
        let resalted = KdfSettings::generate(fast()).unwrap().derive_key(&passphrase).unwrap();
        assert_ne!(first.id(), resalted.id());
    }

    #[test]
    fn empty_passphrase_is_refused() {
        let settings = KdfSettings::generate(fast()).unwrap();
        assert!(settings.derive_key(&SecretString::from("")).is_err());
    }

    #[test]
    fn limits_are_enforced() {
        assert!(KdfParams::new(KdfParams::MIN_MEMORY_KIB - 1, 1, 1).is_err());
        assert!(KdfParams::new(KdfParams::MAX_MEMORY_KIB + 1, 1, 1).is_err());
        assert!(KdfParams::new(8192, 0, 1).is_err());
        assert!(KdfParams::new(8192, KdfParams::MAX_ITERATIONS + 1, 1).is_err());
        assert!(KdfParams::new(8192, 1, 0).is_err());
        assert!(KdfParams::new(8192, 1, 17).is_err());
    }
}
