//! A key ring whose master keys are data keys wrapped by Vault's transit engine: the key that
//! wraps them never leaves the server.

use std::sync::Arc;

use base64ct::{Base64, Encoding};
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::VaultStore;
use super::vault_client::{Answer, VaultClient};
use crate::crypto::{MASTER_KEY_LEN, MasterKey};
use crate::{Error, KeyRing, Result};

/// Data keys wrapped by a transit key: the key that wraps them never leaves the server.
///
/// The wrapped data keys live in the store's mount at `{prefix}/.keyring/{transit key}` (a path no
/// record id can take), as transit ciphertexts. Loading asks transit to unwrap each one; the first
/// load asks transit for a data key. Rotating the transit key and rewrapping every data key under
/// its newest version touches no record: records stay sealed under the same data keys.
/// [`TransitKeyRing::add_data_key`] makes a new data key current, which
/// [`Manager::rekey`](crate::Manager::rekey) then moves the records to.
///
/// ```no_run
/// use credential::store::{TransitKeyRing, VaultStore};
/// use credential::{Manager, SecretString};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
/// let store = VaultStore::builder("https://vault.internal:8200")
///     .token(SecretString::from(std::env::var("VAULT_TOKEN").unwrap_or_default()))
///     .connect()
///     .await?;
/// let transit = TransitKeyRing::new(&store, "transit", "credential-master");
/// let ring = transit.load().await?;
/// let manager = Manager::builder().store(store).key_ring(ring).build().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TransitKeyRing {
    client: Arc<VaultClient>,
    transit: String,
    key: String,
    /// Where the wrapped data keys are kept.
    kept_at: String,
}

/// The wrapped data keys as kept: transit ciphertexts, the current one last.
struct Wrapped {
    ciphertexts: Vec<String>,
    /// The KV version read, for the check-and-set that writes them back (0: none yet).
    kv_version: u64,
}

impl TransitKeyRing {
    /// Data keys wrapped by transit key `key` of the transit engine mounted at `transit`, kept in
    /// `store`'s mount. The transit key must exist (`bao write -f transit/keys/NAME`).
    pub fn new(store: &VaultStore, transit: &str, key: &str) -> Self {
        Self {
            client: Arc::clone(&store.client),
            transit: transit.to_owned(),
            key: key.to_owned(),
            kept_at: store.data_path(&format!(".keyring/{key}")),
        }
    }

    /// The key ring: every data key unwrapped by transit, the newest current. The first load
    /// creates a data key.
    ///
    /// # Errors
    /// [`Error::Storage`] when the server refuses (a missing transit key, a token without
    /// `encrypt`/`decrypt`/`datakey` rights) or cannot be reached; [`Error::Conflict`] when
    /// another process created the first data key at the same moment (load again).
    pub async fn load(&self) -> Result<KeyRing> {
        let mut wrapped = self.read().await?;
        if wrapped.ciphertexts.is_empty() {
            wrapped.ciphertexts.push(self.new_data_key().await?);
            self.write(&wrapped).await?;
        }
        let mut keys = Vec::with_capacity(wrapped.ciphertexts.len());
        for ciphertext in &wrapped.ciphertexts {
            keys.push(self.unwrap(ciphertext).await?);
        }
        let current = keys.pop().ok_or(Error::Config { reason: "no data key" })?;
        let current_id = current.id().clone();
        let mut ring = KeyRing::new(current);
        for key in keys {
            ring.add(key);
        }
        ring.make_current(&current_id)?;
        Ok(ring)
    }

    /// Adds a new data key and makes it current; returns the ring with it. Records move to it
    /// with [`Manager::rekey`](crate::Manager::rekey); the old keys stay for the records not moved yet.
    ///
    /// # Errors
    /// As [`load`](Self::load), and [`Error::Conflict`] when the kept keys changed meanwhile.
    pub async fn add_data_key(&self) -> Result<KeyRing> {
        let mut wrapped = self.read().await?;
        wrapped.ciphertexts.push(self.new_data_key().await?);
        self.write(&wrapped).await?;
        self.load().await
    }

    /// Rotates the transit key and rewraps every data key under its newest version. No record
    /// is touched; the ring's keys are the same afterwards.
    ///
    /// # Errors
    /// As [`load`](Self::load) (a token without `rotate`/`rewrap` rights is refused), and
    /// [`Error::Conflict`] when the kept keys changed meanwhile.
    pub async fn rotate_and_rewrap(&self) -> Result<()> {
        let rotate = format!("{}/keys/{}/rotate", self.transit, self.key);
        self.client.call(Method::POST, &rotate, Some(&json!({}))).await?;
        let mut wrapped = self.read().await?;
        let rewrap = format!("{}/rewrap/{}", self.transit, self.key);
        for ciphertext in &mut wrapped.ciphertexts {
            let answer = self.expect(&rewrap, &json!({ "ciphertext": ciphertext })).await?;
            *ciphertext = text(&answer["data"]["ciphertext"], "rewrap")?.to_owned();
        }
        self.write(&wrapped).await
    }

    /// The transit key versions the kept data keys are wrapped under (`vault:v2:…` → 2).
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub async fn wrapping_versions(&self) -> Result<Vec<u32>> {
        let wrapped = self.read().await?;
        Ok(wrapped
            .ciphertexts
            .iter()
            .filter_map(|ciphertext| ciphertext.split(':').nth(1)?.strip_prefix('v')?.parse().ok())
            .collect())
    }

    async fn read(&self) -> Result<Wrapped> {
        match self.client.call(Method::GET, &self.kept_at, None).await? {
            Answer::Found(found) => {
                let kv_version = found["data"]["metadata"]["version"].as_u64().unwrap_or(0);
                let ciphertexts = found["data"]["data"]["data_keys"]
                    .as_array()
                    .map(|keys| keys.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                Ok(Wrapped { ciphertexts, kv_version })
            }
            _ => Ok(Wrapped { ciphertexts: Vec::new(), kv_version: 0 }),
        }
    }

    async fn write(&self, wrapped: &Wrapped) -> Result<()> {
        let body = json!({
            "options": { "cas": wrapped.kv_version },
            "data": { "data_keys": wrapped.ciphertexts, "transit_key": self.key },
        });
        match self.client.call(Method::POST, &self.kept_at, Some(&body)).await? {
            Answer::Found(_) => Ok(()),
            _ => Err(Error::Conflict { id: format!(".keyring/{}", self.key) }),
        }
    }

    /// A new data key from transit, wrapped (the plaintext half is not asked for).
    async fn new_data_key(&self) -> Result<String> {
        let path = format!("{}/datakey/wrapped/{}", self.transit, self.key);
        let answer = self.expect(&path, &json!({ "bits": MASTER_KEY_LEN * 8 })).await?;
        Ok(text(&answer["data"]["ciphertext"], "datakey")?.to_owned())
    }

    async fn unwrap(&self, ciphertext: &str) -> Result<MasterKey> {
        let path = format!("{}/decrypt/{}", self.transit, self.key);
        let answer = self.expect(&path, &json!({ "ciphertext": ciphertext })).await?;
        let encoded = text(&answer["data"]["plaintext"], "decrypt")?;
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        let decoded =
            Base64::decode(encoded, bytes.as_mut_slice()).map_err(|_| malformed("decrypt"))?;
        if decoded.len() != MASTER_KEY_LEN {
            return Err(malformed("decrypt"));
        }
        Ok(MasterKey::from_bytes(bytes))
    }

    async fn expect(&self, path: &str, body: &Value) -> Result<Value> {
        match self.client.call(Method::POST, path, Some(body)).await? {
            Answer::Found(found) => Ok(found),
            _ => Err(Error::Config { reason: "the transit engine or key does not exist" }),
        }
    }
}

fn text<'a>(value: &'a Value, what: &'static str) -> Result<&'a str> {
    value.as_str().ok_or_else(|| malformed(what))
}

fn malformed(what: &'static str) -> Error {
    Error::CorruptRecord { reason: format!("the transit engine's `{what}` answer is malformed") }
}
