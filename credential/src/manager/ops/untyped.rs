//! Credentials handled without their Rust type: what an operator tool needs to inspect a
//! credential and move it through its lifecycle by id.

use std::fmt;

use base64ct::{Base64, Encoding};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::audit::AuditAction;
use crate::field::{FieldRef, PlainValue, RedactedSecret, SecretValue};
use crate::manager::core::{Change, Decode, versions};
use crate::manager::field_values::FieldValues;
use crate::manager::registry::Decoded;
use crate::manager::{Manager, VersionInfo};
use crate::store::{Record, RecordMeta};
use crate::{Error, LifecycleState, Result, VersionState};

/// A credential loaded by [`Manager::load_dyn`], in whichever state it is, without its Rust type.
///
/// Shows kind, state, revision and history, and a redacted view by field name for kinds the
/// manager knows (built-in, registered, or used through a typed call). The transitions check the
/// state at run time ([`Error::WrongState`] for a step the state does not have) and go through
/// the same commit path as the typed ones: access check, audit, compare-and-swap. Each consumes
/// the handle and returns the next one, so a stale handle cannot be reused.
pub struct DynManaged {
    manager: Manager,
    id: String,
    record: Record,
}

impl fmt::Debug for DynManaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynManaged")
            .field("id", &self.id)
            .field("kind", &self.record.meta.kind)
            .field("state", &self.record.meta.state)
            .field("revision", &self.record.meta.revision)
            .finish_non_exhaustive()
    }
}

/// One field of a revealed view ([`DynManaged::reveal`]): its name and its value in the clear,
/// kept as a secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RevealedField {
    /// The stored field name.
    pub name: &'static str,
    /// Whether the field is a secret.
    pub secret: bool,
    /// The value as text.
    pub value: SecretString,
}

/// One field of a redacted view: its name, and its value with secrets masked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldView {
    /// The stored field name.
    pub name: &'static str,
    /// Whether the field is a secret.
    pub secret: bool,
    /// The value as text; for a secret, `[REDACTED]` or its masked hint.
    pub value: String,
}

impl DynManaged {
    pub(crate) fn new(manager: Manager, id: String, record: Record) -> Self {
        Self { manager, id, record }
    }

    /// The credential id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stored kind.
    pub fn kind(&self) -> &str {
        &self.record.meta.kind
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.record.meta.state
    }

    /// The record revision this handle was read or written at.
    pub fn revision(&self) -> u64 {
        self.record.meta.revision
    }

    /// The version being served (for a draft or a revoked credential: the newest one).
    pub fn version(&self) -> u64 {
        versions::current_number(&self.record)
    }

    /// The record's metadata (no sealed payloads).
    pub fn meta(&self) -> &RecordMeta {
        &self.record.meta
    }

    /// The versions, oldest first.
    pub fn history(&self) -> Vec<VersionInfo> {
        VersionInfo::of(&self.record)
    }

    /// The served version (the pending one of a draft) field by field, secrets masked. Reading
    /// it is audited like any other read.
    ///
    /// # Errors
    /// [`Error::Revoked`] for a revoked credential, [`Error::UnknownKind`] for a kind this
    /// manager cannot decode, [`Error::Decrypt`], [`Error::AccessDenied`].
    pub async fn redacted(&self) -> Result<Vec<FieldView>> {
        self.served_fields(AuditAction::Load, |name, value| {
            let text = match &value {
                FieldRef::Plain(plain) => plain.to_string(),
                FieldRef::Secret(secret, mask) => RedactedSecret::new(*secret, *mask).to_string(),
            };
            Some(FieldView { name, secret: value.is_secret(), value: text })
        })
        .await
    }

    /// The served version (the pending one of a draft) field by field, secrets in the clear
    /// (secret bytes as standard base64), each in the text form [`FieldValues`] takes; an
    /// optional field that is not set is left out.
    /// Audited as [`AuditAction::Reveal`], so the trail tells who saw a secret.
    ///
    /// # Errors
    /// As [`redacted`](Self::redacted).
    pub async fn reveal(&self) -> Result<Vec<RevealedField>> {
        self.served_fields(AuditAction::Reveal, |name, value| {
            let (secret, value) = match value {
                FieldRef::Plain(PlainValue::Null) => return None,
                FieldRef::Plain(plain) => (false, SecretString::from(plain.to_string())),
                FieldRef::Secret(SecretValue::Text(text), _) => (true, text.clone()),
                FieldRef::Secret(SecretValue::Bytes(bytes), _) => {
                    let text = Zeroizing::new(Base64::encode_string(bytes.expose_secret()));
                    (true, SecretString::from(text.as_str()))
                }
                FieldRef::Secret(SecretValue::Absent, _) => return None,
            };
            Some(RevealedField { name, secret, value })
        })
        .await
    }

    /// Reads the served version's fields through the read path, audited as `action`.
    async fn served_fields<T>(
        &self,
        action: AuditAction,
        view: impl Fn(&'static str, FieldRef<'_>) -> Option<T>,
    ) -> Result<Vec<T>> {
        let core = self.manager.core();
        let id = self.id.as_str();
        core.read_record(self.manager.actor(), id, action, |record| {
            let version = match record.meta.state {
                LifecycleState::Revoked => return Err(Error::Revoked { id: id.to_owned() }),
                LifecycleState::Draft => versions::required(id, record, VersionState::Pending)?,
                _ => versions::served(id, record)?,
            };
            let decoder = core.decoder(record, Decode::ByStoredKind)?;
            let decoded = core.open_as(id, record, version, decoder)?;
            let fields = decoded
                .fields
                .schema()
                .iter()
                .filter_map(|field| view(field.name, decoded.fields.field(field.name)?))
                .collect();
            Ok((fields, version.version))
        })
        .await
    }

    fn wrong_state(&self, expected: LifecycleState) -> Error {
        Error::WrongState { id: self.id.clone(), expected, found: self.state() }
    }

    /// Commits this handle's record as `change` makes it (with the version its event names);
    /// the record is moved, not copied.
    async fn commit_as(
        self,
        change: impl FnOnce(Record) -> (Record, Option<u64>),
        action: AuditAction,
        reason: Option<&str>,
    ) -> Result<Self> {
        let Self { manager, id, record } = self;
        let change = Change::moving(&id, record, change, action, reason);
        let record = manager.core().commit(manager.actor(), change).await?;
        Ok(Self { manager, id, record })
    }

    /// The pending version, decoded and checked against the kind's validation rules, when the
    /// manager knows the kind; `None` for a kind this build does not know (it was validated by
    /// whoever sealed it).
    fn checked_pending(&self) -> Result<Option<Decoded>> {
        let core = self.manager.core();
        let Some(decoder) = core.kinds().decoder(&self.record.meta.kind) else {
            return Ok(None);
        };
        let pending = versions::required(&self.id, &self.record, VersionState::Pending)?;
        let decoded = core.open_as(&self.id, &self.record, pending, decoder)?;
        decoder.validate(&decoded)?;
        core.check_in_service(&self.id, decoded.kind, decoded.fields.expires_at())?;
        Ok(Some(decoded))
    }

    /// Starts serving a draft.
    ///
    /// # Errors
    /// [`Error::WrongState`] unless it is a draft; [`Error::Validation`] for a known kind whose
    /// rules fail; otherwise as [`Managed::activate`](crate::Managed::activate).
    pub async fn activate(self) -> Result<Self> {
        if self.state() != LifecycleState::Draft {
            return Err(self.wrong_state(LifecycleState::Draft));
        }
        self.checked_pending()?;
        self.commit_as(versions::activated, AuditAction::Activate, None).await
    }

    /// Makes a rotation's pending version current.
    ///
    /// # Errors
    /// [`Error::WrongState`] unless a rotation is pending; otherwise as
    /// [`Managed::commit`](crate::Managed::commit).
    pub async fn commit(self) -> Result<Self> {
        if self.state() != LifecycleState::Rotating {
            return Err(self.wrong_state(LifecycleState::Rotating));
        }
        let expires_at = self.checked_pending()?.and_then(|pending| pending.fields.expires_at());
        let rules = self.manager.core().rules();
        let commit = |record| versions::committed(record, expires_at, rules);
        self.commit_as(commit, AuditAction::Commit, None).await
    }

    /// Starts a rotation of an active credential to a new version built from `values` (see
    /// [`Manager::create_dyn`]); the current version keeps being served until
    /// [`commit`](Self::commit).
    ///
    /// # Errors
    /// [`Error::WrongState`] unless it is active; [`Error::UnknownKind`] for a kind the manager
    /// cannot build; otherwise as [`Manager::create_dyn`] and
    /// [`Managed::rotate`](crate::Managed::rotate).
    pub async fn rotate(self, values: &FieldValues) -> Result<Self> {
        if self.state() != LifecycleState::Active {
            return Err(self.wrong_state(LifecycleState::Active));
        }
        let core = self.manager.core();
        let decoder = core
            .kinds()
            .decoder(&self.record.meta.kind)
            .ok_or_else(|| Error::UnknownKind { kind: self.record.meta.kind.clone() })?;
        let (encoded, decoded) = decoder.encode_fields(values)?;
        core.learn(decoded.fields.as_ref());
        let number = versions::next_number(&self.record);
        let sealed = core.seal(&self.id, number, decoder.kind, &encoded)?;
        let rotate = |record| (versions::rotated(record, number, sealed), Some(number));
        self.commit_as(rotate, AuditAction::Rotate, None).await
    }

    /// Discards a rotation's pending version.
    ///
    /// # Errors
    /// [`Error::WrongState`] unless a rotation is pending; otherwise as
    /// [`Managed::rollback`](crate::Managed::rollback).
    pub async fn rollback(self) -> Result<Self> {
        if self.state() != LifecycleState::Rotating {
            return Err(self.wrong_state(LifecycleState::Rotating));
        }
        self.commit_as(versions::rolled_back, AuditAction::Rollback, None).await
    }

    /// Restores deprecated `version`: its payload becomes a new current version. For a kind the
    /// manager knows, the payload is decoded and validated first.
    ///
    /// # Errors
    /// [`Error::WrongState`] unless it is active; [`Error::VersionUnavailable`] when `version`
    /// is unknown, current, or its payload was destroyed; otherwise as
    /// [`Managed::rollback_to`](crate::Managed::rollback_to).
    pub async fn rollback_to(self, version: u64) -> Result<Self> {
        if self.state() != LifecycleState::Active {
            return Err(self.wrong_state(LifecycleState::Active));
        }
        let core = self.manager.core();
        let decoder = core.kinds().decoder(&self.record.meta.kind);
        let (record, number, ()) = core.restored(&self.id, &self.record, version, |payload| {
            let Some(decoder) = decoder else { return Ok(((), None)) };
            let decoded = decoder.decode(payload)?;
            decoder.validate(&decoded)?;
            core.check_in_service(&self.id, decoded.kind, decoded.fields.expires_at())?;
            Ok(((), decoded.fields.expires_at()))
        })?;
        self.commit_as(|_| (record, Some(number)), AuditAction::RollbackTo, None).await
    }

    /// Revokes the credential for `reason`: every sealed payload destroyed, metadata kept.
    ///
    /// # Errors
    /// [`Error::Revoked`] when it already is; otherwise as
    /// [`Managed::revoke`](crate::Managed::revoke).
    pub async fn revoke(self, reason: &str) -> Result<Self> {
        if self.state() == LifecycleState::Revoked {
            return Err(Error::Revoked { id: self.id.clone() });
        }
        let version = versions::current_number(&self.record);
        let revoke = |record| (versions::revoked(record), Some(version));
        self.commit_as(revoke, AuditAction::Revoke, Some(reason)).await
    }
}
