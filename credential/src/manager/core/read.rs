//! The read path, in order: **authorize** (policy; a denial says nothing about what exists) →
//! **cache** (a fresh hit skips the next four steps) → **fetch** the record → check its **state**
//! and pick the version → **open** the sealed payload → **decode** it → check **expiry** (or
//! hand a credential due for refresh to refresh) → **audit** the read (queued, never waited
//! for).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Core, Decode, versions};
use crate::audit::{AuditAction, AuditEvent, bounds};
use crate::manager::access::Permission;
use crate::manager::access::Principal;
use crate::manager::cache::{Cached, Loaded};
use crate::manager::registry::{Decoder, Value};
use crate::store::Record;
use crate::store::check_id;
use crate::telemetry::{self, Operation, Source};
use crate::{Error, Result};

impl Core {
    /// The served version of `id`, through the cache: the whole read path, audited as `action`.
    pub(crate) async fn read_current(
        self: &Arc<Self>,
        actor: &Principal,
        id: &str,
        action: AuditAction,
        decode: Decode,
    ) -> Result<Cached> {
        // A core shut down serves nothing, and has no audit to record the refusal in.
        self.serving()?;
        let operation = Operation::read();
        let now = Utc::now();
        let mut source = Source::Cache;
        // The id is checked on its way into the policy's memo or the cache (both hold only
        // checked ids), so a hit does not check it again.
        let found = match self.authorize(actor, id, Permission::Read, now) {
            Err(denied) => Err(denied),
            Ok(()) => match self.cache.get(id, now) {
                Some(hit) => Ok(hit),
                None => {
                    source = Source::Store;
                    telemetry::awaited_within!(operation, self.load_current(id, decode))
                }
            },
        };
        let found = found.and_then(|cached| match decode {
            Decode::As(decoder) if cached.credential.kind != decoder.kind => {
                Err(Error::KindMismatch {
                    expected: decoder.kind.to_owned(),
                    found: cached.credential.kind.to_owned(),
                })
            }
            _ => Ok(cached),
        });
        let found = match found {
            Ok(cached) if cached.due_at.is_some_and(|due_at| due_at <= now) => {
                self.refresh.serve_due(self, id, cached, now, decode).await
            }
            other => other.and_then(|cached| unexpired(id, cached, now)),
        };
        let event = self.read_event(now, actor, id, action, found.as_ref());
        let kind = found.as_ref().ok().map(|cached| cached.credential.kind);
        operation.read_ended(&self.telemetry, &event, kind, source);
        self.audit.record_read(event).inspect_err(telemetry::audit_refused)?;
        found
    }

    /// The served value of `id`, of `decoder`'s kind: what a typed read keeps.
    pub(crate) async fn read_value(
        self: &Arc<Self>,
        actor: &Principal,
        id: &str,
        decoder: Decoder,
    ) -> Result<Value> {
        let cached = self.read_current(actor, id, AuditAction::Read, Decode::As(decoder)).await?;
        Ok(Value::of(&cached.credential))
    }

    /// The audit event of a read of `id` that found `found`.
    fn read_event(
        &self,
        now: DateTime<Utc>,
        actor: &Principal,
        id: &str,
        action: AuditAction,
        found: Result<&Cached, &Error>,
    ) -> AuditEvent {
        match found {
            // The cached id is shared: a hit allocates nothing for its event's id.
            Ok(cached) => {
                let credential = Arc::clone(&cached.id);
                self.event(now, actor, credential, action, Some(cached.version), None, None)
            }
            Err(error) => {
                let credential = bounds::credential(id, Some(error));
                self.event(now, actor, credential, action, None, Some(error), None)
            }
        }
    }

    /// The served version of `id` from the cache, or loaded from the store into it.
    pub(crate) async fn load_current(&self, id: &str, decode: Decode) -> Result<Cached> {
        check_id(id)?;
        if let Decode::As(decoder) = decode {
            // Known from now on to reads by name (templates, operator views).
            self.kinds.register_decoder(decoder);
        }
        self.cache
            .get_or_load(id, || async {
                // One storage id for the fetch and the open.
                let storage_id = self.storage_id(id);
                let record = self.fetch_at(&storage_id, id).await?;
                let decoder = self.decoder(&record, decode)?;
                let served = versions::served(id, &record)?;
                if record.meta.refresh.reauth_required {
                    return Err(Error::ReauthRequired { id: id.to_owned() });
                }
                let decoded =
                    self.decode(decoder, &self.open_raw_at(&storage_id, id, &record, served)?)?;
                let (expires_at, due_at) = self.expiry(&record, served, &decoded);
                Ok(Cached::new(Loaded {
                    due_at,
                    expires_at,
                    credential: decoded,
                    id: Arc::from(id),
                    version: served.version,
                }))
            })
            .await
    }

    /// The served version of `id` as the store has it now: what the cache held is dropped first
    /// (another process's change may have landed before the feed reported it).
    pub(crate) async fn reload_current(&self, id: &str, decode: Decode) -> Result<Cached> {
        self.cache.invalidate(id);
        self.load_current(id, decode).await
    }

    /// Reads the record of `id` without the cache and hands it to `open`: the read path for
    /// reads by version number, operator loads and history, audited as `action`.
    pub(crate) async fn read_record<T>(
        &self,
        actor: &Principal,
        id: &str,
        action: AuditAction,
        open: impl FnOnce(&Record) -> Result<(T, u64)>,
    ) -> Result<T> {
        self.serving()?;
        let operation = Operation::read();
        let now = Utc::now();
        let mut kind = None;
        let read = async {
            check_id(id)?;
            self.authorize(actor, id, Permission::Read, now)?;
            let record = self.fetch(id).await?;
            if telemetry::ENABLED {
                kind = Some(record.meta.kind.clone());
            }
            open(&record)
        };
        let result = telemetry::awaited_within!(operation, read);
        let version = result.as_ref().ok().map(|(_, version)| *version);
        let error = result.as_ref().err();
        let credential = bounds::credential(id, error);
        let event = self.event(now, actor, credential, action, version, error, None);
        operation.read_ended(&self.telemetry, &event, kind.as_deref(), Source::Store);
        self.audit.record_read(event).inspect_err(telemetry::audit_refused)?;
        result.map(|(value, _)| value)
    }
}

/// `cached`, unless it has expired at `now`.
fn unexpired(id: &str, cached: Cached, now: DateTime<Utc>) -> Result<Cached> {
    check_unexpired(id, cached.expires_at, now)?;
    Ok(cached)
}

/// [`Error::Expired`] for a version of `id` that expires at `expires_at`, if that is `now` or
/// earlier: the one expiry rule, for serving a version and for putting one in service
/// (activation, commit, restore).
pub(crate) fn check_unexpired(
    id: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    if expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(Error::Expired { id: id.to_owned() });
    }
    Ok(())
}
