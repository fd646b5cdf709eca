//! A KV v2 mount of HashiCorp Vault or OpenBao as a [`Store`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use base64ct::{Base64, Encoding};
use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::vault_client::{Answer, Auth, VaultClient};
use super::{
    ChangeFeed, ChangeListener, ListFilter, Precondition, Record, RecordMeta, Store, check_id,
    record_codec,
};
use crate::{Error, Result};

/// A KV v2 mount of Vault or OpenBao holding sealed records.
///
/// One secret per record at `{mount}/data/{prefix}/{id}`, holding the sealed record (the same
/// bytes the file and SQL stores keep: plaintext metadata, sealed versions; the server never sees
/// a plaintext secret) and the record's kind and environment in the secret's `custom_metadata`,
/// for operators browsing the mount.
///
/// Revisions map onto KV v2 versions, and every write is a check-and-set on the version read, so
/// a write that lost a race is a conflict and nothing is overwritten. A record's first version
/// after a delete must be revision 1 again while KV versions only grow, so each version also keeps
/// its `base` (revision = KV version − base), and a delete writes a tombstone by check-and-set
/// rather than removing the secret's history. The store remembers the KV version of each revision
/// it has seen, so a read followed by a write is two requests, as for a bare KV client.
///
/// Its change feed is a journal of the latest writes in a secret beside the records
/// (`{prefix}/.journal`), which every write appends to by check-and-set once its record is
/// written and every manager reads every 20 ms; see `vault_journal`.
///
/// ```no_run
/// use credential::store::VaultStore;
/// use credential::SecretString;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
/// let token = SecretString::from(std::env::var("VAULT_TOKEN").unwrap_or_default());
/// let store = VaultStore::builder("https://vault.internal:8200")
///     .token(token)
///     .mount("secret")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
pub struct VaultStore {
    pub(super) client: Arc<VaultClient>,
    pub(super) mount: String,
    pub(super) prefix: String,
    /// The KV version and base of the latest revision seen of each id.
    seen: Mutex<HashMap<String, Seen>>,
}

impl std::fmt::Debug for VaultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultStore")
            .field("client", &self.client)
            .field("mount", &self.mount)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Where a record stands in KV: its latest KV version and that version's base. Revision 0 is
/// "absent" (never written, or deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    kv_version: u64,
    base: u64,
}

impl Seen {
    const NEVER_WRITTEN: Self = Self { kv_version: 0, base: 0 };

    fn revision(self) -> u64 {
        self.kv_version - self.base
    }
}

/// Settings for [`VaultStore`]; see [`VaultStore::builder`].
#[must_use]
pub struct VaultStoreBuilder {
    address: String,
    auth: Option<Auth>,
    mount: String,
    prefix: String,
    namespace: Option<String>,
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for VaultStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultStoreBuilder")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

impl VaultStoreBuilder {
    /// Authenticates with `token`.
    pub fn token(mut self, token: SecretString) -> Self {
        self.auth = Some(Auth::Token(token));
        self
    }

    /// Authenticates by AppRole login (at `auth/approle`), logging in again when the server
    /// stops honouring the token it gave.
    pub fn approle(mut self, role_id: &str, secret_id: SecretString) -> Self {
        self.auth = Some(Auth::AppRole {
            mount: "approle".to_owned(),
            role_id: role_id.to_owned(),
            secret_id,
        });
        self
    }

    /// The KV v2 mount. Default: `secret`.
    pub fn mount(mut self, mount: &str) -> Self {
        self.mount = mount.to_owned();
        self
    }

    /// The path under the mount that holds the records. Default: `credential`.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// The namespace (Vault Enterprise and OpenBao namespaces), sent with every request.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Trusts the CA certificates in this PEM file rather than Mozilla's roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Connects, and checks that the mount answers: a sealed server, a refused token or a
    /// missing mount is an error now rather than at the first read.
    ///
    /// # Errors
    /// [`Error::Config`] for missing or malformed settings, [`Error::InvalidCertificate`] for an
    /// unreadable CA file, [`Error::Storage`] when the server refuses or cannot be reached.
    pub async fn connect(self) -> Result<VaultStore> {
        let auth =
            self.auth.ok_or(Error::Config { reason: "no Vault token or AppRole was given" })?;
        for segment in [&self.mount, &self.prefix] {
            check_id(segment).map_err(|_| Error::Config {
                reason: "the Vault mount and prefix must be paths of A-Z, a-z, 0-9, `_`, `-`, `.`",
            })?;
        }
        let http = crate::http::client(self.ca_file.as_deref())?;
        let client = VaultClient::new(http, &self.address, self.namespace.as_deref(), auth)?;
        let store = VaultStore {
            client: Arc::new(client),
            mount: self.mount,
            prefix: self.prefix,
            seen: Mutex::default(),
        };
        // A path no record can have (ids never start a segment with `.`).
        store.client.call(Method::GET, &store.data_path(".connect"), None).await?;
        Ok(store)
    }
}

impl VaultStore {
    /// Settings for a store on the server at `address` (`https://vault.internal:8200`).
    pub fn builder(address: &str) -> VaultStoreBuilder {
        VaultStoreBuilder {
            address: address.to_owned(),
            auth: None,
            mount: "secret".to_owned(),
            prefix: "credential".to_owned(),
            namespace: None,
            ca_file: None,
        }
    }

    /// A bare KV v2 read of `id`'s secret on this store's client, for benchmarks: the version.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub async fn raw_kv_read(&self, id: &str) -> Result<u64> {
        match self.client.call(Method::GET, &self.data_path(id), None).await? {
            Answer::Found(found) => Ok(found["data"]["metadata"]["version"].as_u64().unwrap_or(0)),
            _ => Err(Error::NotFound { id: id.to_owned() }),
        }
    }

    /// A bare KV v2 check-and-set write of `payload` to `id`'s secret at KV version `cas` on this
    /// store's client, for benchmarks: the new version.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub async fn raw_kv_write(&self, id: &str, cas: u64, payload: &[u8]) -> Result<u64> {
        let data = json!({ "record": Base64::encode_string(payload), "base": 0 });
        self.write(id, Seen { kv_version: cas, base: 0 }, data).await
    }

    pub(super) fn data_path(&self, id: &str) -> String {
        format!("{}/data/{}/{id}", self.mount, self.prefix)
    }

    fn metadata_path(&self, id: &str) -> String {
        format!("{}/metadata/{}/{id}", self.mount, self.prefix)
    }

    fn remember(&self, id: &str, seen: Seen) {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), seen);
    }

    fn forget(&self, id: &str) {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// Where `id` stands, from memory when its revision is `revision`, else from the server.
    async fn stand(&self, id: &str, revision: u64) -> Result<Seen> {
        let remembered = self.seen.lock().unwrap_or_else(PoisonError::into_inner).get(id).copied();
        match remembered {
            Some(seen) if seen.revision() == revision => Ok(seen),
            _ => Ok(self.fetch(id).await?.0),
        }
    }

    /// The record bytes of `id` (none when absent or deleted) and where it stands.
    async fn fetch(&self, id: &str) -> Result<(Seen, Option<Vec<u8>>)> {
        let found = match self.client.call(Method::GET, &self.data_path(id), None).await? {
            Answer::Found(found) => found,
            Answer::Absent => {
                self.remember(id, Seen::NEVER_WRITTEN);
                return Ok((Seen::NEVER_WRITTEN, None));
            }
            Answer::CasMismatch => return Err(corrupt(id, "a read was refused as a write")),
        };
        let kv_version = found["data"]["metadata"]["version"]
            .as_u64()
            .ok_or_else(|| corrupt(id, "the secret has no version"))?;
        let data = &found["data"]["data"];
        // A version deleted or destroyed with the KV commands reads as no record.
        let (base, bytes) = if data.is_null() || data["deleted"].as_bool() == Some(true) {
            (kv_version, None)
        } else {
            let bytes = data["record"]
                .as_str()
                .and_then(|text| Base64::decode_vec(text).ok())
                .ok_or_else(|| corrupt(id, "the secret holds no record"))?;
            (data["base"].as_u64().unwrap_or(0), Some(bytes))
        };
        if base > kv_version {
            return Err(corrupt(id, "the secret's base is past its version"));
        }
        let seen = Seen { kv_version, base };
        self.remember(id, seen);
        Ok((seen, bytes))
    }

    /// Writes `data` over `seen` by check-and-set; the new KV version.
    async fn write(&self, id: &str, seen: Seen, data: Value) -> Result<u64> {
        let body = json!({ "options": { "cas": seen.kv_version }, "data": data });
        match self.client.call(Method::POST, &self.data_path(id), Some(&body)).await? {
            Answer::Found(written) => written["data"]["version"]
                .as_u64()
                .ok_or_else(|| corrupt(id, "the write returned no version")),
            Answer::CasMismatch => {
                self.forget(id);
                Err(Error::Conflict { id: id.to_owned() })
            }
            Answer::Absent => Err(corrupt(id, "the mount vanished during the write")),
        }
    }

    /// The ids under `folder` (relative to the prefix), depth first.
    async fn ids_under(&self, folder: &str, ids: &mut Vec<String>) -> Result<()> {
        let path = format!("{}?list=true", self.metadata_path(folder));
        let listing = self.client.call(Method::GET, &path, None).await?;
        let Answer::Found(listing) = listing else { return Ok(()) };
        let keys = listing["data"]["keys"].as_array().cloned().unwrap_or_default();
        for key in keys.iter().filter_map(Value::as_str) {
            let path = format!("{folder}{key}");
            if key.ends_with('/') {
                Box::pin(self.ids_under(&path, ids)).await?;
            } else if check_id(&path).is_ok() {
                ids.push(path);
            }
        }
        Ok(())
    }
}

fn corrupt(id: &str, reason: &str) -> Error {
    Error::CorruptRecord { reason: format!("Vault secret for `{id}`: {reason}") }
}

#[async_trait]
impl Store for VaultStore {
    async fn get(&self, id: &str) -> Result<Option<Record>> {
        check_id(id)?;
        let (seen, bytes) = self.fetch(id).await?;
        let Some(bytes) = bytes else { return Ok(None) };
        let mut record = record_codec::decode_stored(id, &bytes)?;
        record.meta.revision = seen.revision();
        Ok(Some(record))
    }

    async fn put(&self, mut record: Record, precondition: Precondition) -> Result<u64> {
        let id = record.meta.id.clone();
        check_id(&id)?;
        let expected = match precondition {
            Precondition::Absent => 0,
            Precondition::Revision(revision) => revision,
        };
        let seen = self.stand(&id, expected).await?;
        if seen.revision() != expected {
            return Err(Error::Conflict { id });
        }
        record.meta.revision = expected + 1;
        let data = json!({
            "record": Base64::encode_string(&record_codec::encode(&record)),
            "base": seen.base,
        });
        let kv_version = self.write(&id, seen, data).await?;
        self.remember(&id, Seen { kv_version, base: seen.base });
        if expected == 0 {
            // For operators browsing the mount; the record itself is the truth, so a refusal
            // here (a policy without metadata writes) leaves the write as it is.
            let metadata = json!({ "custom_metadata": {
                "credential_kind": record.meta.kind,
                "credential_environment": record.meta.environment,
            }});
            let _ = self.client.call(Method::POST, &self.metadata_path(&id), Some(&metadata)).await;
        }
        self.journal(&id).await;
        Ok(record.meta.revision)
    }

    async fn delete(&self, id: &str, revision: u64) -> Result<()> {
        check_id(id)?;
        let seen = self.stand(id, revision).await?;
        if revision == 0 || seen.revision() != revision {
            return Err(Error::Conflict { id: id.to_owned() });
        }
        let tombstone = seen.kv_version + 1;
        let kv_version =
            self.write(id, seen, json!({ "deleted": true, "base": tombstone })).await?;
        self.remember(id, Seen { kv_version, base: kv_version });
        self.journal(id).await;
        Ok(())
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let mut ids = Vec::new();
        self.ids_under("", &mut ids).await?;
        ids.sort();
        let mut metas = Vec::new();
        for id in ids {
            if filter.id_prefix.as_ref().is_some_and(|prefix| !id.starts_with(prefix.as_str())) {
                continue;
            }
            let (seen, Some(bytes)) = self.fetch(&id).await? else { continue };
            let mut meta = record_codec::decode_stored_meta(&id, &bytes)?;
            meta.revision = seen.revision();
            if filter.matches(&meta) {
                metas.push(meta);
            }
        }
        Ok(metas)
    }

    fn watch(&self, listener: Arc<dyn ChangeListener>) -> Result<Option<ChangeFeed>> {
        Ok(self.follow_journal(listener))
    }

    /// The server's clock (`sys/health`), to the second.
    async fn now(&self) -> Result<DateTime<Utc>> {
        let Answer::Found(health) = self.client.call_anonymous("sys/health?standbyok=true").await?
        else {
            return Err(corrupt("sys/health", "no answer"));
        };
        health["server_time_utc"]
            .as_i64()
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .ok_or_else(|| corrupt("sys/health", "no server time"))
    }
}
