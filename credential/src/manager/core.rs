//! The core every operation goes through: it owns the store, the key ring, the id namespace, the
//! cache and the audit sink, and has one read path and one commit path.
//!
//! The read path, in order: **authorize** (policy; a denial says nothing about what exists) →
//! **cache** (a fresh hit skips the next four steps) → **fetch** the record → check its **state**
//! and pick the version → **open** the sealed payload → **decode** it → check **expiry** →
//! **audit** the read (queued, never waited for).
//!
//! The commit path, in order: **authorize** (write, or admin for revoke, restore, rekey and
//! import) →
//! **audit** the mutation durably → **compare-and-swap** on the record revision → **invalidate**
//! the cache. A mutation whose event cannot be recorded does not happen; a swap that fails is
//! audited as failed.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::access::{AccessPolicy, DecisionMemo, Permission, Principal, SharedMemos};
use super::audit::{AuditAction, AuditEvent, AuditOutcome, AuditSink};
use super::audit_bounds;
use super::cache::{Cache, CacheListener, Cached, Loaded};
use super::clock;
use super::front_cache::{Allowed, Hit};
use super::refresh::Refreshers;
use super::refresh_flight::Flights;
use super::registry::{Decoded, Decoder, KindRegistry, Value};
use super::thread_shard::Sharded;
use super::versions::{self, VersionRules};
use crate::hazmat::SealContext;
use crate::telemetry::{self, Operation, Source, StoreOp, Telemetry};
use crate::{
    ChangeFeed, Error, KeyRing, Precondition, Record, Result, SealedVersion, Store, check_id,
};

/// Who acts: a principal and, once the policy was asked for it, the memo of the access decisions
/// made for it.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub(crate) principal: Principal,
    decisions: OnceLock<Arc<DecisionMemo>>,
}

impl Actor {
    pub(crate) fn new(principal: Principal) -> Self {
        Self { principal, decisions: OnceLock::new() }
    }

    /// The decisions `memos` holds for this principal.
    fn decisions(&self, memos: &SharedMemos) -> &DecisionMemo {
        self.decisions.get_or_init(|| memos.of(&self.principal))
    }
}

/// How the read path decodes the served version.
#[derive(Clone, Copy)]
pub(crate) enum Decode {
    /// As this kind; another stored kind is [`Error::KindMismatch`].
    As(Decoder),
    /// As whatever kind is stored, through the registry.
    ByStoredKind,
}

/// A change for the commit path: `record` replaces the record at `expected` (`None`: creates it).
pub(crate) struct Change<'a> {
    pub(crate) id: &'a str,
    pub(crate) expected: Option<u64>,
    pub(crate) record: Record,
    pub(crate) action: AuditAction,
    pub(crate) version: Option<u64>,
    pub(crate) reason: Option<&'a str>,
}

impl<'a> Change<'a> {
    /// `record`, which must still be at its revision, as `change` makes it (with the version its
    /// event names). The record is moved, not copied.
    pub(crate) fn moving(
        id: &'a str,
        record: Record,
        change: impl FnOnce(Record) -> (Record, Option<u64>),
        action: AuditAction,
        reason: Option<&'a str>,
    ) -> Self {
        let expected = Some(record.meta.revision);
        let (record, version) = change(record);
        Self { id, expected, record, action, version, reason }
    }

    /// `after` in place of `before`, which must still be at its revision.
    pub(crate) fn replacing(
        id: &'a str,
        before: &Record,
        after: Record,
        action: AuditAction,
        version: Option<u64>,
        reason: Option<&'a str>,
    ) -> Self {
        Self { id, expected: Some(before.meta.revision), record: after, action, version, reason }
    }
}

pub(crate) struct Core {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) ring: KeyRing,
    pub(crate) environment: Arc<str>,
    /// Copies of `environment`, one per thread shard, for the audit events of reads: each thread
    /// counts references on its own copy.
    pub(crate) environments: Sharded<Arc<str>>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) policy: Option<AccessPolicy>,
    pub(crate) rules: VersionRules,
    pub(crate) cache: Arc<Cache>,
    pub(crate) kinds: KindRegistry,
    /// Each principal's access decisions, shared by all its contexts.
    pub(crate) memos: SharedMemos,
    pub(crate) telemetry: Telemetry,
    /// The refreshers by kind, and when credentials fall due.
    pub(crate) refreshers: Refreshers,
    /// The refreshes running in this process.
    pub(crate) flights: Flights,
    /// Who refreshes are attributed to and checked as: the manager's operator.
    pub(crate) operator: Actor,
    /// This manager's name on refresh leases, unique across processes.
    pub(crate) refresh_holder: String,
    /// Keeps the store's change feed running for as long as the core lives.
    pub(crate) _feed: Option<ChangeFeed>,
}

impl Core {
    /// Starts following `store`'s change feed, if it has one, into `cache`.
    pub(crate) fn watch(
        store: &dyn Store,
        cache: &Arc<Cache>,
        environment: &str,
    ) -> Result<Option<ChangeFeed>> {
        let listener =
            CacheListener { cache: Arc::clone(cache), prefix: format!("{environment}/") };
        let feed = store.watch(Arc::new(listener))?;
        if let Some(feed) = &feed {
            cache.follow(feed.kind());
        }
        Ok(feed)
    }

    /// `principal` as an actor.
    pub(crate) fn actor(&self, principal: Principal) -> Actor {
        Actor::new(principal)
    }

    /// The id the store knows `id` by: namespaced by the environment.
    pub(crate) fn storage_id(&self, id: &str) -> String {
        let mut storage_id = String::with_capacity(self.environment.len() + 1 + id.len());
        storage_id.push_str(&self.environment);
        storage_id.push('/');
        storage_id.push_str(id);
        storage_id
    }

    /// Whom the policy (if any) lets do `permission` on `id` as `actor` does, and until when;
    /// an error when it does not let `actor`.
    pub(crate) fn authorize(
        &self,
        actor: &Actor,
        id: &str,
        permission: Permission,
        now: DateTime<Utc>,
    ) -> Result<Allowed> {
        let Some(policy) = &self.policy else {
            return Ok(Allowed::Anyone);
        };
        let decision = actor.decisions(&self.memos).allows(
            policy,
            &actor.principal,
            id,
            &self.environment,
            permission,
            now,
        )?;
        if !decision.allowed {
            return Err(Error::AccessDenied { id: id.to_owned() });
        }
        Ok(Allowed::Reader { until: decision.valid_until })
    }

    // ----- the read path -----

    /// The served version of `id`, through the cache: the whole read path, audited as `action`.
    pub(crate) async fn read_current(
        self: &Arc<Self>,
        actor: &Actor,
        id: &str,
        action: AuditAction,
        decode: Decode,
    ) -> Result<Cached> {
        self.read_as(actor, id, action, decode, Cached::clone).await
    }

    /// The served value of `id`, of `decoder`'s kind: [`read_current`](Self::read_current) for a
    /// reader that keeps only the value, so a counted hit hands out one reference.
    pub(crate) async fn read_value(
        self: &Arc<Self>,
        actor: &Actor,
        id: &str,
        decoder: Decoder,
    ) -> Result<Value> {
        self.read_as(actor, id, AuditAction::Read, Decode::As(decoder), |cached| {
            Value::of(&cached.credential)
        })
        .await
    }

    /// The read path, handing out `take` of what it found.
    async fn read_as<T>(
        self: &Arc<Self>,
        actor: &Actor,
        id: &str,
        action: AuditAction,
        decode: Decode,
        take: impl Fn(&Cached) -> T,
    ) -> Result<T> {
        let operation = Operation::read();
        let now_nanos = clock::now_nanos();
        // The common case, a hit on this thread's copy already allowed for this principal, asks
        // nothing of anything shared, and a read it serves is counted on the copy's tally when
        // the sink counts reads itself; a hit in the shared cache awaits nothing; a miss loads in
        // place: boxing it cost every miss an allocation and two copies of its future, while a
        // read awaited in place pays nothing for the larger future.
        let mut source = Source::Cache;
        let counts = |cached: &Cached| action == AuditAction::Read && is_kind(cached, decode);
        let copy = match self.cache.copy(id, &actor.principal, now_nanos, counts, &take) {
            Some(Ok(Hit::Counted { taken, kind, version })) => {
                operation.counted_read_ended(&self.telemetry, kind, || {
                    let credential = audit_bounds::credential(id, None);
                    let at = clock::at(now_nanos);
                    self.event(at, actor, credential, action, Some(version), None, None)
                });
                return Ok(taken);
            }
            Some(Ok(Hit::Uncounted(copy))) => Some(copy),
            Some(Err(refused)) => {
                telemetry::audit_refused(&refused);
                return Err(refused);
            }
            None => None,
        };
        let now = clock::at(now_nanos);
        let found = match copy {
            Some(copy) => Ok(copy),
            None => match self.authorized_hit(actor, id, now) {
                Err(error) => Err(error),
                Ok(Some(hit)) => Ok(hit),
                Ok(None) => {
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
                Box::pin(self.serve_due(id, cached, now, decode)).await
            }
            other => other.and_then(|cached| unexpired(id, cached, now)),
        };
        let event = self.read_event(now, actor, id, action, found.as_ref());
        let kind = found.as_ref().ok().map(|cached| cached.credential.kind);
        operation.read_ended(&self.telemetry, &event, kind, source);
        self.audit.record_read(event).inspect_err(telemetry::audit_refused)?;
        found.map(|cached| take(&cached))
    }

    /// The audit event of a read of `id` that found `found`.
    fn read_event(
        &self,
        now: DateTime<Utc>,
        actor: &Actor,
        id: &str,
        action: AuditAction,
        found: Result<&Cached, &Error>,
    ) -> AuditEvent {
        match found {
            // The cached id is shared: a hit allocates nothing for its event.
            Ok(cached) => self.event(
                now,
                actor,
                Arc::clone(&cached.id),
                action,
                Some(cached.version),
                None,
                None,
            ),
            Err(error) => {
                let credential = audit_bounds::credential(id, Some(error));
                self.event(now, actor, credential, action, None, Some(error), None)
            }
        }
    }

    /// Checks the policy, then looks in the cache. The id is checked on its way into the policy's
    /// memo or the cache (both hold only checked ids), so a hit does not check it again.
    fn authorized_hit(
        &self,
        actor: &Actor,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Cached>> {
        let allowed = self.authorize(actor, id, Permission::Read, now)?;
        Ok(self.cache.get(id, &actor.principal, now, |cached| {
            // The reads this principal makes of this version on this thread are counted on one
            // tally, if the sink keeps tallies.
            let access = self.read_event(now, actor, id, AuditAction::Read, Ok(cached));
            (allowed, self.audit.read_tally(&access))
        }))
    }

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
                    decoder.decode(&self.open_raw_at(&storage_id, id, &record, served)?)?;
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

    /// Reads the record of `id` without the cache and hands it to `open`: the read path for
    /// reads by version number, operator loads and history, audited as `action`.
    pub(crate) async fn read_record<T>(
        &self,
        actor: &Actor,
        id: &str,
        action: AuditAction,
        open: impl FnOnce(&Record) -> Result<(T, u64)>,
    ) -> Result<T> {
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
        let credential = audit_bounds::credential(id, error);
        let event = self.event(now, actor, credential, action, version, error, None);
        operation.read_ended(&self.telemetry, &event, kind.as_deref(), Source::Store);
        self.audit.record_read(event).inspect_err(telemetry::audit_refused)?;
        result.map(|(value, _)| value)
    }

    /// The record of `id`.
    pub(crate) async fn fetch(&self, id: &str) -> Result<Record> {
        self.fetch_at(&self.storage_id(id), id).await
    }

    /// The record of `id`, which the store knows as `storage_id`.
    async fn fetch_at(&self, storage_id: &str, id: &str) -> Result<Record> {
        self.telemetry
            .store_call(StoreOp::Get, self.store.get(storage_id))
            .await?
            .ok_or_else(|| Error::NotFound { id: id.to_owned() })
    }

    /// The decoder for `record` under `decode`.
    pub(crate) fn decoder(&self, record: &Record, decode: Decode) -> Result<Decoder> {
        match decode {
            Decode::As(decoder) if decoder.kind == record.meta.kind => Ok(decoder),
            Decode::As(decoder) => Err(Error::KindMismatch {
                expected: decoder.kind.to_owned(),
                found: record.meta.kind.clone(),
            }),
            Decode::ByStoredKind => self
                .kinds
                .decoder(&record.meta.kind)
                .ok_or_else(|| Error::UnknownKind { kind: record.meta.kind.clone() }),
        }
    }

    /// Opens and decodes `version` of `record`.
    pub(crate) fn open_as(
        &self,
        id: &str,
        record: &Record,
        version: &SealedVersion,
        decoder: Decoder,
    ) -> Result<Decoded> {
        decoder.decode(&self.open_raw(id, record, version)?)
    }

    /// Opens `version` of `record`: the kind's storage encoding, not decoded.
    pub(crate) fn open_raw(
        &self,
        id: &str,
        record: &Record,
        version: &SealedVersion,
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.open_raw_at(&self.storage_id(id), id, record, version)
    }

    /// As [`open_raw`](Self::open_raw), for a record the store knows as `storage_id`.
    fn open_raw_at(
        &self,
        storage_id: &str,
        id: &str,
        record: &Record,
        version: &SealedVersion,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if version.sealed.is_empty() {
            return Err(Error::VersionUnavailable { id: id.to_owned(), version: version.version });
        }
        let context = SealContext::new(storage_id, version.version, &record.meta.kind);
        self.ring.open(&context, &version.sealed)
    }

    /// `record` with deprecated `version` restored as a new current version: its payload re-sealed
    /// as is under the next number, once `check` (which decodes and validates it, for a known
    /// kind) accepted it and said when it expires. Returns the new record, its version number and
    /// what `check` made of the payload.
    pub(crate) fn restored<T>(
        &self,
        id: &str,
        record: &Record,
        version: u64,
        check: impl FnOnce(&[u8]) -> Result<(T, Option<DateTime<Utc>>)>,
    ) -> Result<(Record, u64, T)> {
        let old = versions::restorable(id, record, version)?;
        let payload = self.open_raw(id, record, old)?;
        let (checked, expires_at) = check(&payload)?;
        let number = versions::next_number(record);
        let sealed = self.seal(id, number, &record.meta.kind, &payload)?;
        let restored =
            versions::with_current(record.clone(), number, sealed, expires_at, self.rules);
        Ok((restored, number, checked))
    }

    /// When `decoded`, the served version of `record`, expires, and when its refresh falls due
    /// (`None`: nothing refreshes it).
    pub(crate) fn expiry(
        &self,
        record: &Record,
        served: &SealedVersion,
        decoded: &Decoded,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let expires_at = decoded.fields.expires_at().or(record.meta.expires_at);
        (expires_at, self.refreshers.due_at(decoded.kind, served.created_at, expires_at))
    }

    /// Seals `plaintext` as `version` of `id`, of `kind`.
    pub(crate) fn seal(
        &self,
        id: &str,
        version: u64,
        kind: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        self.seal_at(&self.storage_id(id), version, kind, plaintext)
    }

    /// As [`seal`](Self::seal), for a record the store knows as `storage_id`.
    pub(crate) fn seal_at(
        &self,
        storage_id: &str,
        version: u64,
        kind: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        self.ring.seal(&SealContext::new(storage_id, version, kind), plaintext)
    }

    // ----- the commit path -----

    /// Commits `change` as `actor`; returns the record as written, at its new revision.
    pub(crate) async fn commit(&self, actor: &Actor, change: Change<'_>) -> Result<Record> {
        if !telemetry::ENABLED {
            return self.commit_as(actor, change).await;
        }
        let operation = Operation::commit();
        let kind = operation.traced().then(|| change.record.meta.kind.clone());
        let (id, action, version) = (change.id, change.action, change.version);
        let result = telemetry::awaited_within!(operation, self.commit_as(actor, change));
        let error = result.as_ref().err();
        operation.commit_ended(&self.telemetry, action, error, kind.as_deref(), || {
            let credential = audit_bounds::credential(id, error);
            self.event(Utc::now(), actor, credential, action, version, error, None)
        });
        result
    }

    async fn commit_as(&self, actor: &Actor, change: Change<'_>) -> Result<Record> {
        let Change { id, expected, mut record, action, version, reason } = change;
        let now = Utc::now();
        let permission = match action {
            AuditAction::Revoke
            | AuditAction::RollbackTo
            | AuditAction::Rekey
            | AuditAction::Import => Permission::Admin,
            _ => Permission::Write,
        };
        let authorized = check_id(id).and_then(|()| self.authorize(actor, id, permission, now));
        if let Err(denied) = authorized {
            self.audit_mutation(now, actor, id, action, version, Some(&denied), None).await?;
            return Err(denied);
        }
        // Audited before it happens: an unaudited change must never exist.
        self.audit_mutation(now, actor, id, action, version, None, reason).await?;
        record.meta.updated_at = now;
        let precondition = expected.map_or(Precondition::Absent, Precondition::Revision);
        let written = self
            .telemetry
            .store_call(StoreOp::Put, self.store.put(record.clone(), precondition))
            .await;
        // Whatever the outcome, a value cached or being loaded may now be stale.
        self.cache.invalidate(id);
        match written {
            Ok(revision) => {
                record.meta.revision = revision;
                Ok(record)
            }
            Err(error) => {
                let error = match error {
                    Error::Conflict { .. } => Error::Conflict { id: id.to_owned() },
                    other => other,
                };
                // The change did not happen; say so after the event that announced it.
                let _ = self
                    .audit_mutation(Utc::now(), actor, id, action, version, Some(&error), None)
                    .await;
                Err(error)
            }
        }
    }

    // ----- audit -----

    /// The audit event for `action` on `id` by `actor`, ending with `error` (none: success).
    /// Every caller-controlled field is bounded, and an id that failed its check is recorded
    /// only in its escaped, truncated form.
    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        time: DateTime<Utc>,
        actor: &Actor,
        credential: Arc<str>,
        action: AuditAction,
        version: Option<u64>,
        error: Option<&Error>,
        reason: Option<&str>,
    ) -> AuditEvent {
        let outcome = AuditOutcome::of(error);
        AuditEvent {
            time,
            principal: audit_bounds::principal(&actor.principal),
            credential,
            environment: Arc::clone(self.environments.local()),
            action,
            outcome,
            version,
            error: error.map(|error| error.code().to_owned()),
            reason: reason.map(audit_bounds::reason),
            count: 1,
            until: None,
        }
    }

    /// Records a mutation's event durably.
    #[allow(clippy::too_many_arguments)]
    async fn audit_mutation(
        &self,
        time: DateTime<Utc>,
        actor: &Actor,
        id: &str,
        action: AuditAction,
        version: Option<u64>,
        error: Option<&Error>,
        reason: Option<&str>,
    ) -> Result<()> {
        let credential = audit_bounds::credential(id, error);
        let event = self.event(time, actor, credential, action, version, error, reason);
        self.audit.record(event).await
    }
}

/// Whether `cached` is of the kind a read decoding as `decode` wants.
fn is_kind(cached: &Cached, decode: Decode) -> bool {
    match decode {
        Decode::As(decoder) => decoder.kind == cached.credential.kind,
        Decode::ByStoredKind => true,
    }
}

/// `cached`, unless it has expired at `now`.
fn unexpired(id: &str, cached: Cached, now: DateTime<Utc>) -> Result<Cached> {
    if cached.expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(Error::Expired { id: id.to_owned() });
    }
    Ok(cached)
}

/// An error for `decoded` when it has expired at `now`.
pub(crate) fn check_unexpired(id: &str, decoded: &Decoded, now: DateTime<Utc>) -> Result<()> {
    if decoded.fields.expires_at().is_some_and(|expires_at| expires_at <= now) {
        return Err(Error::Expired { id: id.to_owned() });
    }
    Ok(())
}
