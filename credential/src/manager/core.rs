//! The core every operation goes through: it owns the store, the key ring, the id namespace, the
//! cache and the audit sink, and has one read path (`read`) and one commit path (`commit`).
//!
//! Its fields are private: handles, contexts, refresh and the operator operations reach the
//! store only through those two paths, so every change is authorized, audited before it
//! happens, and followed by the cache's invalidation.

mod commit;
mod read;
pub(crate) mod versions;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

pub(crate) use self::commit::Change;
pub(crate) use self::read::check_unexpired;
use self::versions::VersionRules;
use super::access::{AccessPolicy, Permission, Principal};
use super::cache::{Cache, CacheConfig, CacheListener, Cached};
use super::decisions::Decisions;
use super::registry::{AnyCredential, Decoded, Decoder, KindRegistry};
use super::rotation::{Rotators, Schedule};
use crate::audit::{AuditAction, AuditEvent, AuditOutcome, AuditSink, Unwritten, bounds};
use crate::field::{FieldRef, PlainValue, SecretValue};
use crate::hazmat::SealContext;
use crate::masking::Masker;
use crate::store::{ChangeFeed, ListFilter, Record, RecordMeta, SealedVersion, Store};
use crate::telemetry::{StoreOp, Telemetry};
use crate::{Error, KeyRing, Result};

/// How the read path decodes the served version.
#[derive(Clone, Copy)]
pub(crate) enum Decode {
    /// As this kind; another stored kind is [`Error::KindMismatch`].
    As(Decoder),
    /// As whatever kind is stored, through the registry.
    ByStoredKind,
}

/// A boxed future of the read path's kind.
pub(crate) type ReadFuture<'a> = Pin<Box<dyn Future<Output = Result<Cached>> + Send + 'a>>;

/// What the read path asks of refresh, which `manager::refresh` answers: refresh commits through
/// the core, so the core knows it only through this trait.
pub(crate) trait Refresh: Send + Sync + 'static {
    /// When a credential of `kind` issued at `issued` and expiring at `expires_at` falls due for
    /// refresh (`None`: nothing refreshes it).
    fn due_at(
        &self,
        kind: &str,
        issued: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>>;

    /// What to serve for `cached`, which is due at `now`: see `manager::refresh::flight`.
    fn serve_due<'a>(
        &'a self,
        core: &'a Arc<Core>,
        id: &'a str,
        cached: Cached,
        now: DateTime<Utc>,
        decode: Decode,
    ) -> ReadFuture<'a>;

    /// Returns once every refresh in progress has landed.
    fn landed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// What a core is made of; see [`Core::start`].
pub(crate) struct Parts {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) ring: KeyRing,
    pub(crate) environment: String,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) policy: Option<AccessPolicy>,
    pub(crate) rules: VersionRules,
    pub(crate) cache: CacheConfig,
    pub(crate) kinds: KindRegistry,
    pub(crate) refresh: Box<dyn Refresh>,
    pub(crate) operator: Principal,
    /// No other manager writes the store (see `ManagerBuilder::sole_writer`).
    pub(crate) sole_writer: bool,
    /// Learns the secrets served, to mask them.
    pub(crate) masker: Masker,
    /// This manager's name on leases, unique across processes.
    pub(crate) lease_holder: String,
    /// The rotators by kind, and the schedule that runs them.
    pub(crate) rotators: Rotators,
    pub(crate) schedule: Schedule,
    /// Untagged records are refused (see `ManagerBuilder::require_tags`).
    pub(crate) require_tags: bool,
}

pub(crate) struct Core {
    store: Arc<dyn Store>,
    ring: KeyRing,
    environment: Arc<str>,
    audit: Arc<dyn AuditSink>,
    /// The access policy (if any) and its decisions.
    decisions: Decisions,
    rules: VersionRules,
    cache: Arc<Cache>,
    kinds: KindRegistry,
    telemetry: Telemetry,
    refresh: Box<dyn Refresh>,
    /// Who refreshes are attributed to and checked as: the manager's operator.
    operator: Principal,
    /// Untagged records are refused rather than served.
    require_tags: bool,
    /// Learns every secret value decoded or given, to mask it in what actions write.
    masker: Masker,
    lease_holder: String,
    rotators: Rotators,
    schedule: Schedule,
    /// Keeps the store's change feed running until the core shuts down or goes.
    feed: Mutex<Option<ChangeFeed>>,
    /// The task that runs scheduled rotations, stopped when the core shuts down or goes.
    schedule_task: std::sync::OnceLock<tokio::task::AbortHandle>,
    /// [`RUNNING`], [`DRAINING`] or [`SHUT_DOWN`]; see [`Core::shutdown`].
    phase: AtomicU8,
}

/// Serving and changing credentials.
const RUNNING: u8 = 0;
/// Shutting down: nothing new is served, what is under way may still commit.
const DRAINING: u8 = 1;
/// Shut down: nothing is served or changed.
const SHUT_DOWN: u8 = 2;

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(task) = self.schedule_task.get() {
            task.abort();
        }
    }
}

impl Core {
    /// The core over `parts`, following the store's change feed (if it has one) into its cache.
    pub(crate) fn start(parts: Parts) -> Result<Arc<Self>> {
        let cache = Arc::new(Cache::new(parts.cache)?);
        let listener = CacheListener::new(Arc::clone(&cache), &parts.environment);
        let feed = parts.store.watch(Arc::new(listener))?;
        match &feed {
            Some(feed) => cache.follow(feed.kind()),
            None if parts.sole_writer => {}
            None => cache.unwatched(),
        }
        Ok(Arc::new(Self {
            store: parts.store,
            ring: parts.ring,
            environment: Arc::from(parts.environment),
            audit: parts.audit,
            decisions: Decisions::new(parts.policy),
            rules: parts.rules,
            cache,
            kinds: parts.kinds,
            telemetry: Telemetry::default(),
            refresh: parts.refresh,
            operator: parts.operator,
            require_tags: parts.require_tags,
            masker: parts.masker,
            lease_holder: parts.lease_holder,
            rotators: parts.rotators,
            schedule: parts.schedule,
            feed: Mutex::new(feed),
            schedule_task: std::sync::OnceLock::new(),
            phase: AtomicU8::new(RUNNING),
        }))
    }

    /// `Ok` while the core serves: what every read and listing checks first.
    pub(crate) fn serving(&self) -> Result<()> {
        match self.phase.load(Ordering::Acquire) {
            RUNNING => Ok(()),
            _ => Err(Error::ShutDown),
        }
    }

    /// `Ok` until the core has shut down: what every commit checks first.
    fn committing(&self) -> Result<()> {
        match self.phase.load(Ordering::Acquire) {
            SHUT_DOWN => Err(Error::ShutDown),
            _ => Ok(()),
        }
    }

    /// Shuts the core down, in order: nothing new is served; the scheduled rotations stop (a
    /// rotation cut off mid-step is resumed by the next run, as after a crash); the refreshes in
    /// progress land; nothing more is changed; the change feed stops; the cache is emptied; the
    /// audit sink writes what it holds and closes. Returns the audit events that could not be
    /// written. A second call finds nothing left to do.
    pub(crate) async fn shutdown(&self) -> std::result::Result<(), Unwritten> {
        self.phase.fetch_max(DRAINING, Ordering::AcqRel);
        if let Some(task) = self.schedule_task.get() {
            task.abort();
        }
        self.refresh.landed().await;
        self.phase.store(SHUT_DOWN, Ordering::Release);
        drop(self.feed.lock().unwrap_or_else(PoisonError::into_inner).take());
        self.cache.clear();
        self.audit.close().await
    }

    pub(crate) fn environment(&self) -> &str {
        &self.environment
    }

    pub(crate) fn audit(&self) -> &dyn AuditSink {
        self.audit.as_ref()
    }

    pub(crate) fn masker(&self) -> &Masker {
        &self.masker
    }

    /// This manager's name on leases (refresh and rotation), unique across processes.
    pub(crate) fn lease_holder(&self) -> &str {
        &self.lease_holder
    }

    pub(crate) fn rotators(&self) -> &Rotators {
        &self.rotators
    }

    pub(crate) fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Starts the task that runs scheduled rotations, if there are policies.
    pub(crate) fn start_schedule(self: &Arc<Self>) {
        if let Some(task) = Schedule::start(self) {
            let _ = self.schedule_task.set(task.abort_handle());
        }
    }

    /// The access policy in force (none: everything is allowed).
    pub(crate) fn policy(&self) -> Option<Arc<AccessPolicy>> {
        self.decisions.policy()
    }

    /// Puts `policy` in force for every read and change that starts after this returns, once
    /// its event (by `actor`, with how many grants it holds) is durable; a failed audit leaves
    /// the policy in force as it was.
    pub(crate) async fn set_policy(
        &self,
        actor: &Principal,
        policy: Option<AccessPolicy>,
    ) -> Result<()> {
        self.committing()?;
        let grants = match &policy {
            Some(policy) => format!("{} grants", policy.grants().len()),
            None => "no policy: everything is allowed".to_owned(),
        };
        let event = self.event(
            Utc::now(),
            actor,
            Arc::from("*"),
            AuditAction::SetPolicy,
            None,
            None,
            Some(&grants),
        );
        self.audit.record(event).await?;
        self.decisions.replace(policy);
        Ok(())
    }

    /// Audits, durably, a step taken outside the store (at a rotation's target system) on `id`
    /// by the operator, ending with `failure` (an error code and a reason; none: success).
    pub(crate) async fn audit_outside(
        &self,
        id: &str,
        action: AuditAction,
        version: Option<u64>,
        failure: Option<(&'static str, &str)>,
    ) -> Result<()> {
        let mut event =
            self.event(Utc::now(), &self.operator, Arc::from(id), action, version, None, None);
        if let Some((code, reason)) = failure {
            event.outcome = AuditOutcome::Failure;
            event.error = Some(code.to_owned());
            event.reason = Some(bounds::reason(reason));
        }
        self.audit.record(event).await
    }

    /// Teaches the masker the secret values of `credential`, which is being served or stored.
    pub(crate) fn learn(&self, credential: &dyn AnyCredential) {
        let secrets = credential.schema().iter().enumerate().filter(|(_, field)| field.is_secret());
        self.masker.learn_secrets(
            secrets.filter_map(|(index, field)| match credential.field_at(index)? {
                FieldRef::Secret(SecretValue::Text(text), _) => {
                    Some((field.name, text.expose_secret().as_bytes()))
                }
                FieldRef::Secret(SecretValue::Bytes(bytes), _) => {
                    Some((field.name, bytes.expose_secret()))
                }
                _ => None,
            }),
            |name| match credential.field(name)? {
                FieldRef::Plain(PlainValue::Text(text)) => Some(text),
                _ => None,
            },
        );
    }

    /// [`Error::Expired`] for a version of `id`, of `kind`, that expires at `expires_at` if it
    /// has expired and nothing refreshes it: what may not go into service (activation, commit,
    /// restore). An expired credential of a kind with a refresher goes in; its first read
    /// refreshes it.
    pub(crate) fn check_in_service(
        &self,
        id: &str,
        kind: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let now = Utc::now();
        if self.refresh.due_at(kind, now, expires_at).is_some() {
            return Ok(());
        }
        check_unexpired(id, expires_at, now)
    }

    /// Decodes `plaintext`, what a version of a record opened to, and learns its secrets.
    pub(crate) fn decode(&self, decoder: Decoder, plaintext: &[u8]) -> Result<Decoded> {
        let decoded = decoder.decode(plaintext)?;
        self.learn(decoded.fields.as_ref());
        Ok(decoded)
    }

    pub(crate) fn ring(&self) -> &KeyRing {
        &self.ring
    }

    pub(crate) fn kinds(&self) -> &KindRegistry {
        &self.kinds
    }

    pub(crate) fn rules(&self) -> VersionRules {
        self.rules
    }

    pub(crate) fn operator(&self) -> &Principal {
        &self.operator
    }

    /// The id the store knows `id` by: namespaced by the environment.
    pub(crate) fn storage_id(&self, id: &str) -> String {
        let mut storage_id = String::with_capacity(self.environment.len() + 1 + id.len());
        storage_id.push_str(&self.environment);
        storage_id.push('/');
        storage_id.push_str(id);
        storage_id
    }

    /// The metadata of this environment's records that pass `filter`, ids as the store knows
    /// them (with the environment prefix).
    pub(crate) async fn list_stored(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        self.serving()?;
        let mut scoped = filter.clone();
        scoped.environment = Some(self.environment.as_ref().to_owned());
        scoped.id_prefix = Some(self.storage_id(filter.id_prefix.as_deref().unwrap_or_default()));
        self.store.list(&scoped).await
    }

    /// The metadata of this environment's records that pass `filter`, ids without the
    /// environment prefix.
    pub(crate) async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let prefix_len = self.environment.len() + 1;
        let metas = self.list_stored(filter).await?;
        Ok(metas
            .into_iter()
            .map(|mut meta| {
                meta.id = meta.id.split_off(prefix_len.min(meta.id.len()));
                meta
            })
            .collect())
    }

    /// Whether the policy (if any) lets `actor` do `permission` on `id` at `now`.
    fn authorize(
        &self,
        actor: &Principal,
        id: &str,
        permission: Permission,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let decision = self.decisions.decide(actor, id, &self.environment, permission, now)?;
        if !decision.allowed {
            return Err(Error::AccessDenied { id: id.to_owned() });
        }
        Ok(())
    }

    /// The record of `id`.
    pub(crate) async fn fetch(&self, id: &str) -> Result<Record> {
        self.fetch_at(&self.storage_id(id), id).await
    }

    /// The record of `id`, which the store knows as `storage_id`, once its tag is checked.
    async fn fetch_at(&self, storage_id: &str, id: &str) -> Result<Record> {
        let record = self
            .telemetry
            .store_call(StoreOp::Get, self.store.get(storage_id))
            .await?
            .ok_or_else(|| Error::NotFound { id: id.to_owned() })?;
        self.check_tag(id, &record)?;
        Ok(record)
    }

    /// `record` with a new tag over what it says about how it is served, under the master key it
    /// names: what every write through the core stores.
    fn tagged(&self, mut record: Record) -> Result<Record> {
        record.meta.tag = self.ring.tag(&record.meta.key_id, &record.covered_bytes())?;
        Ok(record)
    }

    /// Refuses `record` if its tag does not match what it says: someone who can write the
    /// store, but lacks the master key, changed it. An untagged record (written before records
    /// were tagged) passes until its next write tags it, unless tags are required.
    fn check_tag(&self, id: &str, record: &Record) -> Result<()> {
        let meta = &record.meta;
        let reason = if meta.tag.is_empty() {
            if !self.require_tags {
                return Ok(());
            }
            "it has no tag, and this manager requires one"
        } else if self.ring.verify_tag(&meta.key_id, &record.covered_bytes(), &meta.tag)? {
            return Ok(());
        } else {
            "it does not match its tag: it was changed without the master key"
        };
        Err(Error::CorruptRecord { reason: format!("record `{id}`: {reason}") })
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
        self.decode(decoder, &self.open_raw(id, record, version)?)
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
        (expires_at, self.refresh.due_at(decoded.kind, served.created_at, expires_at))
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

    /// The audit event for `action` on `id` by `actor`, ending with `error` (none: success).
    /// Every caller-controlled field is bounded, and an id that failed its check is recorded
    /// only in its escaped, truncated form.
    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        time: DateTime<Utc>,
        actor: &Principal,
        credential: Arc<str>,
        action: AuditAction,
        version: Option<u64>,
        error: Option<&Error>,
        reason: Option<&str>,
    ) -> AuditEvent {
        AuditEvent {
            time,
            principal: bounds::principal(actor.shared_name()),
            credential,
            environment: Arc::clone(&self.environment),
            action,
            outcome: AuditOutcome::of(error),
            version,
            error: error.map(|error| error.code().to_owned()),
            reason: reason.map(bounds::reason),
            count: 1,
            until: None,
            revision: None,
        }
    }
}
