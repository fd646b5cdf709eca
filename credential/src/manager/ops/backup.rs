//! Credentials taken out of a store in plaintext and put back under another master key: what a
//! backup holds, so that a restore does not depend on the key that sealed the originals.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use super::backup_fields;
use super::untyped::DynManaged;
use crate::audit::AuditAction;
use crate::manager::Manager;
use crate::manager::core::{Change, versions};
use crate::store::{Record, RecordMeta, SealedVersion, check_id};
use crate::{Error, LifecycleState, Result, VersionState};

/// A credential as [`Manager::export`] takes it out of the store: its metadata and every version
/// that still has a payload, opened. Hand it only to something that encrypts it (a backup file in
/// the age format, say); `Debug` shows no payload.
#[derive(Debug, Clone)]
pub struct ExportedCredential {
    /// The credential id (without the environment).
    pub id: String,
    /// The stored kind.
    pub kind: String,
    /// The lifecycle state.
    pub state: LifecycleState,
    /// When the credential was created.
    pub created_at: DateTime<Utc>,
    /// When the current version expires, if it does.
    pub expires_at: Option<DateTime<Utc>>,
    /// Free-form tags.
    pub tags: BTreeSet<String>,
    /// The versions, oldest first.
    pub versions: Vec<ExportedVersion>,
}

/// One version of an [`ExportedCredential`].
#[derive(Clone)]
pub struct ExportedVersion {
    /// The version number.
    pub version: u64,
    /// Its state.
    pub state: VersionState,
    /// When it was sealed.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub changed_at: DateTime<Utc>,
    /// The kind's storage encoding of the version, in plaintext; `None` once destroyed. What an
    /// import restores.
    pub payload: Option<SecretSlice<u8>>,
    /// The same version's fields as a JSON object, secrets in the clear (secret bytes in standard
    /// base64), for reading a backup by hand; `None` once destroyed, or when the exporting
    /// manager does not know the kind or cannot decode the version with it. An import checks it against the payload and refuses a
    /// credential whose fields were changed.
    pub fields: Option<SecretString>,
}

impl fmt::Debug for ExportedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedVersion")
            .field("version", &self.version)
            .field("state", &self.state)
            .field("payload", &self.payload.as_ref().map(|_| crate::field::REDACTED))
            .field("fields", &self.fields.as_ref().map(|_| crate::field::REDACTED))
            .finish()
    }
}

/// Opens every version of `id` that has a payload, audited as [`AuditAction::Export`].
pub(crate) async fn export(manager: &Manager, id: &str) -> Result<ExportedCredential> {
    let core = manager.core();
    core.read_record(manager.actor(), id, AuditAction::Export, |record| {
        let decoder = core.kinds().decoder(&record.meta.kind);
        let versions = record
            .versions
            .iter()
            .map(|version| {
                let (mut payload, mut fields) = (None, None);
                if !version.sealed.is_empty() {
                    let opened = core.open_raw(id, record, version)?;
                    // A version its kind no longer decodes (written before a field became
                    // required, say) is still backed up, by its payload alone.
                    if let Some(decoded) = decoder.and_then(|kind| kind.decode(&opened).ok()) {
                        fields = Some(backup_fields::to_json(&decoded, opened.len())?);
                    }
                    payload = Some(SecretSlice::from(opened.to_vec()));
                }
                Ok(ExportedVersion {
                    version: version.version,
                    state: version.state,
                    created_at: version.created_at,
                    changed_at: version.changed_at,
                    payload,
                    fields,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let exported = ExportedCredential {
            id: id.to_owned(),
            kind: record.meta.kind.clone(),
            state: record.meta.state,
            created_at: record.meta.created_at,
            expires_at: record.meta.expires_at,
            tags: record.meta.tags.clone(),
            versions,
        };
        Ok((exported, versions::current_number(record)))
    })
    .await
}

/// Seals `exported` under the current key and commits it as a new record, audited as
/// [`AuditAction::Import`].
pub(crate) async fn import(manager: &Manager, exported: &ExportedCredential) -> Result<DynManaged> {
    let record = prepare(manager, exported)?;
    commit(manager, &exported.id, record).await
}

/// Imports every credential of `exported`, or none: each is checked and sealed before the first
/// is written, and if a write fails, those written before it are withdrawn.
pub(crate) async fn import_all(
    manager: &Manager,
    exported: &[ExportedCredential],
) -> Result<Vec<DynManaged>> {
    let mut ids = BTreeSet::new();
    let mut records = Vec::with_capacity(exported.len());
    for credential in exported {
        if !ids.insert(credential.id.as_str()) {
            return Err(inconsistent(&credential.id, "it appears twice"));
        }
        records.push(prepare(manager, credential)?);
    }
    let mut imported: Vec<DynManaged> = Vec::with_capacity(records.len());
    for (credential, record) in exported.iter().zip(records) {
        match commit(manager, &credential.id, record).await {
            Ok(handle) => imported.push(handle),
            Err(error) => {
                for written in imported.iter().rev() {
                    manager
                        .core()
                        .withdraw_import(manager.actor(), written.id(), written.revision(), &error)
                        .await?;
                }
                return Err(error);
            }
        }
    }
    Ok(imported)
}

/// `exported` checked (versions in order, payloads matching their states and decoding as their
/// kind, a version to serve in its state) and sealed under the current key: the record an
/// import writes.
fn prepare(manager: &Manager, exported: &ExportedCredential) -> Result<Record> {
    let id = exported.id.as_str();
    check_id(id)?;
    let core = manager.core();
    let decoder = core.kinds().decoder(&exported.kind);
    let mut sealed_versions = Vec::with_capacity(exported.versions.len());
    let mut previous = 0;
    for version in &exported.versions {
        if version.version <= previous {
            return Err(inconsistent(id, "version numbers are not increasing"));
        }
        previous = version.version;
        let sealed = match (&version.payload, version.state) {
            (None, VersionState::Destroyed) => Vec::new(),
            (Some(_), VersionState::Destroyed) | (None, _) => {
                return Err(inconsistent(id, "a version's payload does not match its state"));
            }
            (Some(payload), _) => {
                if let Some(decoder) = decoder {
                    let decoded = decoder.decode(payload.expose_secret())?;
                    if let Some(given) = &version.fields {
                        let size = payload.expose_secret().len();
                        if !backup_fields::same(given, &backup_fields::to_json(&decoded, size)?) {
                            return Err(inconsistent(
                                id,
                                "a version's fields differ from its payload (edited by hand?)",
                            ));
                        }
                    }
                }
                core.seal(id, version.version, &exported.kind, payload.expose_secret())?
            }
        };
        sealed_versions.push(SealedVersion {
            version: version.version,
            state: version.state,
            created_at: version.created_at,
            changed_at: version.changed_at,
            sealed,
        });
    }
    let now = Utc::now();
    let record = Record {
        meta: RecordMeta {
            id: core.storage_id(id),
            kind: exported.kind.clone(),
            environment: core.environment().to_owned(),
            state: exported.state,
            revision: 0,
            created_at: exported.created_at,
            updated_at: now,
            expires_at: exported.expires_at,
            tags: exported.tags.clone(),
            key_id: core.ring().current_id().as_str().to_owned(),
            refresh: Default::default(),
            tag: Vec::new(),
            trail: None,
        },
        versions: sealed_versions,
    };
    if record.meta.state != LifecycleState::Revoked {
        let served = match record.meta.state {
            LifecycleState::Draft => versions::required(id, &record, VersionState::Pending),
            _ => versions::served(id, &record),
        };
        served.map_err(|_| inconsistent(id, "no version to serve in its state"))?;
    }
    Ok(record)
}

/// Writes `record`, prepared from an export of `id`, as a new record.
async fn commit(manager: &Manager, id: &str, record: Record) -> Result<DynManaged> {
    let core = manager.core();
    let version = Some(versions::current_number(&record));
    let change =
        Change { id, expected: None, record, action: AuditAction::Import, version, reason: None };
    let written = core.commit(manager.actor(), change).await?;
    Ok(DynManaged::new(manager.clone(), id.to_owned(), written))
}

fn inconsistent(id: &str, what: &str) -> Error {
    Error::CorruptRecord { reason: format!("exported credential `{id}`: {what}") }
}
