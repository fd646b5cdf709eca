//! The manager: lifecycle transitions, access checks, audit and the cache around a store and a
//! key ring.

mod access;
mod audit;
mod audit_jsonl;
mod audit_sqlite;
mod cache;
mod context;
mod id_hasher;
mod lifecycle;
mod registry;
mod resolve;
mod template;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

pub(crate) use access::DecisionMemo;
pub use access::{AccessPolicy, Grant, Permission, Principal};
pub use audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditQuery, AuditSink, AuditSummary, MemoryAuditSink,
};
pub use audit_jsonl::{ChainReport, JsonlAuditSink};
pub use audit_sqlite::SqliteAuditSink;
use cache::Cache;
pub use cache::CacheConfig;
pub use context::Context;
use lifecycle::AnyState;
pub use lifecycle::{Active, AnyManaged, Draft, Live, Managed, Revoked, Rotating, State};
use registry::{AnyCredential, KindRegistry};
pub use resolve::ResolveOptions;

use crate::{
    Credential, Error, KeyId, KeyRing, LifecycleState, ListFilter, Precondition, Record,
    RecordMeta, Result, SealContext, SealedVersion, Store, VersionState, check_id,
};

/// The environment a manager works in unless told otherwise.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// Credentials over a store and a key ring: create and move them through their lifecycle, read
/// them through a [`Context`], with access checks, audit and a cache. Cheap to clone; share it
/// across tasks.
///
/// ```
/// use credential::prelude::*;
/// use credential::{KeyRing, Manager, MemoryStore, Principal};
///
/// #[derive(Credential)]
/// #[credential(kind = "github")]
/// struct GitHub {
///     #[secret]
///     token: SecretString,
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
/// let manager = Manager::builder().store(MemoryStore::new()).key_ring(KeyRing::generate()?).build().await?;
/// let draft = manager.create("github/main", GitHub { token: "ghp_example".into() }).await?;
/// draft.activate().await?;
/// let ctx = manager.context(Principal::new("workflow/release", "action/tag"));
/// let github = ctx.get::<GitHub>("github/main").await?;
/// assert_eq!(github.token.expose_secret(), "ghp_example");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    ring: KeyRing,
    environment: Arc<str>,
    audit: Arc<dyn AuditSink>,
    policy: Option<AccessPolicy>,
    operator_decisions: DecisionMemo,
    operator: Principal,
    grace_period: chrono::Duration,
    max_versions: usize,
    cache: Cache,
    kinds: KindRegistry,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("environment", &self.inner.environment)
            .field("key", self.inner.ring.current_id())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Manager`]; see [`Manager::builder`].
#[must_use]
pub struct ManagerBuilder {
    store: Option<Arc<dyn Store>>,
    ring: Option<KeyRing>,
    environment: String,
    audit: Option<Arc<dyn AuditSink>>,
    policy: Option<AccessPolicy>,
    operator: Principal,
    grace_period: Duration,
    max_versions: usize,
    cache: CacheConfig,
    kinds: KindRegistry,
}

impl std::fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    /// Where records live (required).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The master keys (required).
    pub fn key_ring(mut self, ring: KeyRing) -> Self {
        self.ring = Some(ring);
        self
    }

    /// The environment (`dev`, `staging`, `production`, ...): ids are namespaced by it, so one
    /// store can hold several environments. Default: [`DEFAULT_ENVIRONMENT`].
    pub fn environment(mut self, environment: &str) -> Self {
        self.environment = environment.to_owned();
        self
    }

    /// Where audit events go. Default: a [`MemoryAuditSink`].
    pub fn audit(mut self, sink: impl AuditSink) -> Self {
        self.audit = Some(Arc::new(sink));
        self
    }

    /// The access policy. Without one everything is allowed; with one, everything not granted is
    /// denied.
    pub fn access_policy(mut self, policy: AccessPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Who the manager's own operations (create, transitions, load) are attributed to and checked
    /// as. Default: `Principal::named("operator")`.
    pub fn operator(mut self, operator: Principal) -> Self {
        self.operator = operator;
        self
    }

    /// How long a deprecated version stays readable by explicit version. Default: 24 hours.
    pub fn grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = grace_period;
        self
    }

    /// How many versions keep their payload; older deprecated ones are destroyed (their
    /// metadata stays in the history). Default: 10, at least 2.
    pub fn max_versions(mut self, max_versions: usize) -> Self {
        self.max_versions = max_versions;
        self
    }

    /// The cache of decrypted credentials. Default: [`CacheConfig::default`].
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Teaches the manager to decode kind `C` by name, for templates over credentials it has not
    /// seen through a typed call yet. The built-in kinds, and every type the manager is used with,
    /// are known already.
    pub fn register<C: Credential>(self) -> Self {
        self.kinds.register::<C>();
        self
    }

    /// Builds the manager, checking that the key ring holds every master key the records of its
    /// environment are sealed under.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing store or key ring or invalid settings,
    /// [`Error::WrongMasterKey`] for a ring that lacks a key in use, or a store error.
    pub async fn build(self) -> Result<Manager> {
        let store = self.store.ok_or(Error::Config { reason: "no store was given" })?;
        let ring = self.ring.ok_or(Error::Config { reason: "no key ring was given" })?;
        if self.max_versions < 2 {
            return Err(Error::Config { reason: "max_versions must be at least 2" });
        }
        check_id(&self.environment).map_err(|_| Error::Config {
            reason: "the environment name is not a valid id segment",
        })?;
        let grace_period = chrono::Duration::from_std(self.grace_period)
            .map_err(|_| Error::Config { reason: "the grace period is too long" })?;
        // Only this environment's records: another environment in the same store may use its own
        // master keys.
        let own_records = ListFilter::all().environment(self.environment.clone());
        for meta in store.list(&own_records).await? {
            if meta.state != LifecycleState::Revoked && !meta.key_id.is_empty() {
                ring.check(&KeyId::parse(&meta.key_id)?)?;
            }
        }
        Ok(Manager {
            inner: Arc::new(Inner {
                store,
                ring,
                environment: Arc::from(self.environment),
                audit: self.audit.unwrap_or_else(|| Arc::new(MemoryAuditSink::new())),
                policy: self.policy,
                operator_decisions: DecisionMemo::default(),
                operator: self.operator,
                grace_period,
                max_versions: self.max_versions,
                cache: Cache::new(self.cache),
                kinds: self.kinds,
            }),
        })
    }
}

/// One version as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionInfo {
    /// The version number.
    pub version: u64,
    /// Its state.
    pub state: VersionState,
    /// When it was sealed.
    pub created_at: chrono::DateTime<Utc>,
    /// When its state last changed.
    pub changed_at: chrono::DateTime<Utc>,
}

impl Manager {
    /// A builder; `store` and `key_ring` are required.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder {
            store: None,
            ring: None,
            environment: DEFAULT_ENVIRONMENT.to_owned(),
            audit: None,
            policy: None,
            operator: Principal::named("operator"),
            grace_period: Duration::from_secs(24 * 60 * 60),
            max_versions: 10,
            cache: CacheConfig::default(),
            kinds: KindRegistry::with_builtin_kinds(),
        }
    }

    /// The environment this manager works in.
    pub fn environment(&self) -> &str {
        &self.inner.environment
    }

    /// The audit sink.
    pub fn audit(&self) -> &dyn AuditSink {
        self.inner.audit.as_ref()
    }

    /// A context for reading credentials as `principal`.
    pub fn context(&self, principal: Principal) -> Context {
        Context::new(self.clone(), principal)
    }

    /// Creates credential `id` as a draft.
    ///
    /// # Errors
    /// [`Error::Validation`], [`Error::Conflict`] when `id` exists, [`Error::InvalidId`],
    /// [`Error::AccessDenied`], [`Error::Audit`], or a store error.
    pub async fn create<C: Credential>(
        &self,
        id: &str,
        credential: C,
    ) -> Result<Managed<C, Draft>> {
        check_id(id)?;
        self.inner.kinds.register::<C>();
        credential.validate()?;
        let sealed = self.seal(id, 1, &credential)?;
        let now = Utc::now();
        let record = Record {
            meta: RecordMeta {
                id: self.storage_id(id),
                kind: C::KIND.to_owned(),
                environment: self.inner.environment.to_string(),
                state: LifecycleState::Draft,
                revision: 0,
                created_at: now,
                updated_at: now,
                expires_at: credential.expires_at(),
                tags: Default::default(),
                key_id: self.inner.ring.current_id().to_string(),
            },
            versions: vec![lifecycle::sealed_version(1, VersionState::Pending, sealed)],
        };
        let written = self.write(id, None, record, AuditAction::Create, Some(1), None).await?;
        Ok(Managed::from_parts(self.clone(), id.to_owned(), written, Arc::new(credential)))
    }

    /// Loads credential `id` in whatever state it is.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::KindMismatch`], [`Error::AccessDenied`], [`Error::Decrypt`],
    /// or a store error.
    pub async fn load<C: Credential>(&self, id: &str) -> Result<AnyManaged<C>> {
        let operator = self.inner.operator.clone();
        let result = self.load_unaudited::<C>(&operator, id).await;
        let version = result.as_ref().ok().map(|any| any.version());
        self.record_event(&operator, id, AuditAction::Load, version, result.as_ref().err(), None)
            .await?;
        result.map(|any| any.0)
    }

    async fn load_unaudited<C: Credential>(
        &self,
        operator: &Principal,
        id: &str,
    ) -> Result<Loaded<C>> {
        check_id(id)?;
        self.authorize(operator, id, Permission::Read)?;
        let record = self.fetch::<C>(id).await?;
        let version_of = |state: VersionState| {
            record.versions.iter().rev().find(|version| version.state == state)
        };
        let open = |state| -> Result<Arc<C>> {
            let version = version_of(state).ok_or_else(|| Error::CorruptRecord {
                reason: format!("credential `{id}` has no {state} version"),
            })?;
            self.open_version(id, version).map(Arc::new)
        };
        let id_owned = id.to_owned();
        let manager = self.clone();
        let state = match record.meta.state {
            LifecycleState::Draft => AnyState::Draft(Managed::from_parts(
                manager,
                id_owned,
                record.clone(),
                open(VersionState::Pending)?,
            )),
            LifecycleState::Active => AnyState::Active(Managed::from_parts(
                manager,
                id_owned,
                record.clone(),
                open(VersionState::Current)?,
            )),
            LifecycleState::Rotating => {
                let data = (open(VersionState::Current)?, open(VersionState::Pending)?);
                AnyState::Rotating(Managed::from_parts(manager, id_owned, record.clone(), data))
            }
            LifecycleState::Revoked => {
                AnyState::Revoked(Managed::from_parts(manager, id_owned, record.clone(), ()))
            }
        };
        Ok(Loaded(AnyManaged::new(state), lifecycle::current_version(&record)))
    }

    /// The versions of credential `id`, oldest first, with their states and timestamps.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::AccessDenied`], or a store error.
    pub async fn history(&self, id: &str) -> Result<Vec<VersionInfo>> {
        check_id(id)?;
        self.authorize(&self.inner.operator, id, Permission::Read)?;
        let record = self
            .inner
            .store
            .get(&self.storage_id(id))
            .await?
            .ok_or_else(|| Error::NotFound { id: id.to_owned() })?;
        Ok(record
            .versions
            .iter()
            .map(|version| VersionInfo {
                version: version.version,
                state: version.state,
                created_at: version.created_at,
                changed_at: version.changed_at,
            })
            .collect())
    }

    /// The metadata of the credentials of this environment that pass `filter` (ids shown without
    /// the environment prefix).
    ///
    /// # Errors
    /// A store error.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let mut scoped = filter.clone();
        scoped.environment = Some(self.inner.environment.to_string());
        scoped.id_prefix = Some(self.storage_id(filter.id_prefix.as_deref().unwrap_or_default()));
        let prefix_len = self.inner.environment.len() + 1;
        Ok(self
            .inner
            .store
            .list(&scoped)
            .await?
            .into_iter()
            .map(|mut meta| {
                meta.id = meta.id.split_off(prefix_len.min(meta.id.len()));
                meta
            })
            .collect())
    }

    fn storage_id(&self, id: &str) -> String {
        format!("{}/{id}", self.inner.environment)
    }

    pub(crate) fn seal<C: Credential>(
        &self,
        id: &str,
        version: u64,
        credential: &C,
    ) -> Result<Vec<u8>> {
        let storage_id = self.storage_id(id);
        self.inner.ring.seal(&SealContext::new(&storage_id, version, C::KIND), &credential.encode())
    }

    pub(crate) fn open_version<C: Credential>(
        &self,
        id: &str,
        version: &SealedVersion,
    ) -> Result<C> {
        if version.sealed.is_empty() {
            return Err(Error::VersionUnavailable { id: id.to_owned(), version: version.version });
        }
        let storage_id = self.storage_id(id);
        let plaintext = self
            .inner
            .ring
            .open(&SealContext::new(&storage_id, version.version, C::KIND), &version.sealed)?;
        C::decode(&plaintext)
    }

    /// The record of `id`, checked to be of kind `C`.
    pub(crate) async fn fetch<C: Credential>(&self, id: &str) -> Result<Record> {
        self.inner.kinds.register::<C>();
        let record = self
            .inner
            .store
            .get(&self.storage_id(id))
            .await?
            .ok_or_else(|| Error::NotFound { id: id.to_owned() })?;
        if record.meta.kind != C::KIND {
            return Err(Error::KindMismatch {
                expected: C::KIND.to_owned(),
                found: record.meta.kind,
            });
        }
        Ok(record)
    }

    /// The current version of `id` decoded by its stored kind, for access by field name; with the
    /// version number and the expiry. Checks the state like `Context::get`; not cached.
    pub(crate) async fn load_by_name(
        &self,
        id: &str,
    ) -> Result<(Arc<dyn AnyCredential>, u64, Option<chrono::DateTime<Utc>>)> {
        let storage_id = self.storage_id(id);
        let record = self
            .inner
            .store
            .get(&storage_id)
            .await?
            .ok_or_else(|| Error::NotFound { id: id.to_owned() })?;
        let current = served_version(id, &record)?;
        let decode = self
            .inner
            .kinds
            .decoder(&record.meta.kind)
            .ok_or_else(|| Error::UnknownKind { kind: record.meta.kind.clone() })?;
        let context = SealContext::new(&storage_id, current.version, &record.meta.kind);
        let credential = decode(&self.inner.ring.open(&context, &current.sealed)?)?;
        let expires_at = credential.expires_at().or(record.meta.expires_at);
        Ok((credential, current.version, expires_at))
    }

    /// Destroys the payloads of the oldest deprecated versions beyond `max_versions`.
    pub(crate) fn prune(&self, record: &mut Record) {
        let kept = record.versions.iter().filter(|version| !version.sealed.is_empty()).count();
        let excess = kept.saturating_sub(self.inner.max_versions);
        for version in record
            .versions
            .iter_mut()
            .filter(|version| version.state == VersionState::Deprecated)
            .take(excess)
        {
            version.state = VersionState::Destroyed;
            version.changed_at = Utc::now();
            version.sealed = Vec::new();
        }
    }

    /// Checks the policy, audits the mutation before committing it (fail closed), writes it with
    /// compare-and-swap and invalidates the cache.
    pub(crate) async fn commit_change(
        &self,
        id: &str,
        before: &Record,
        after: Record,
        action: AuditAction,
        version: Option<u64>,
        reason: Option<String>,
    ) -> Result<Record> {
        self.write(id, Some(before.meta.revision), after, action, version, reason).await
    }

    async fn write(
        &self,
        id: &str,
        revision: Option<u64>,
        mut record: Record,
        action: AuditAction,
        version: Option<u64>,
        reason: Option<String>,
    ) -> Result<Record> {
        let operator = self.inner.operator.clone();
        let permission = if matches!(action, AuditAction::Revoke | AuditAction::RollbackTo) {
            Permission::Admin
        } else {
            Permission::Write
        };
        if let Err(denied) = self.authorize(&operator, id, permission) {
            self.record_event(&operator, id, action, version, Some(&denied), None).await?;
            return Err(denied);
        }
        // Audited before it happens: an unaudited change must never exist.
        self.record_event(&operator, id, action, version, None, reason).await?;
        record.meta.updated_at = Utc::now();
        let precondition = revision.map_or(Precondition::Absent, Precondition::Revision);
        match self.inner.store.put(record.clone(), precondition).await {
            Ok(new_revision) => {
                self.inner.cache.invalidate(id);
                record.meta.revision = new_revision;
                Ok(record)
            }
            Err(error) => {
                self.inner.cache.invalidate(id);
                let error = match error {
                    Error::Conflict { .. } => Error::Conflict { id: id.to_owned() },
                    other => other,
                };
                // The change did not happen; say so after the event that announced it.
                let _ = self.record_event(&operator, id, action, version, Some(&error), None).await;
                Err(error)
            }
        }
    }

    /// `Ok` when the policy (if any) lets `principal` do `permission` on `id`, deciding through
    /// `memo` (the principal's own memo of decisions).
    pub(crate) fn authorize_with(
        &self,
        memo: &DecisionMemo,
        principal: &Principal,
        id: &str,
        permission: Permission,
        now: chrono::DateTime<Utc>,
    ) -> Result<()> {
        let Some(policy) = &self.inner.policy else {
            return Ok(());
        };
        if memo.allows(policy, principal, id, &self.inner.environment, permission, now) {
            Ok(())
        } else {
            Err(Error::AccessDenied { id: id.to_owned() })
        }
    }

    /// [`authorize_with`](Self::authorize_with) for the manager's own operator.
    fn authorize(&self, principal: &Principal, id: &str, permission: Permission) -> Result<()> {
        self.authorize_with(&self.inner.operator_decisions, principal, id, permission, Utc::now())
    }

    pub(crate) async fn record_event(
        &self,
        principal: &Principal,
        id: &str,
        action: AuditAction,
        version: Option<u64>,
        error: Option<&Error>,
        reason: Option<String>,
    ) -> Result<()> {
        self.emit(self.event(Utc::now(), principal, Arc::from(id), action, version, error, reason))
            .await
    }

    /// The audit event for `action` on `id` by `principal` at `time`, ending with `error` (none:
    /// success).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn event(
        &self,
        time: chrono::DateTime<Utc>,
        principal: &Principal,
        id: Arc<str>,
        action: AuditAction,
        version: Option<u64>,
        error: Option<&Error>,
        reason: Option<String>,
    ) -> AuditEvent {
        let outcome = match error {
            None => AuditOutcome::Success,
            Some(Error::AccessDenied { .. }) => AuditOutcome::Denied,
            Some(_) => AuditOutcome::Failure,
        };
        AuditEvent {
            time,
            principal: principal.shared_name(),
            credential: id,
            environment: Arc::clone(&self.inner.environment),
            action,
            outcome,
            version,
            error: error.map(|error| error.code().to_owned()),
            reason,
        }
    }

    /// Records `event`, without an allocation when the sink can take it at once.
    pub(crate) async fn emit(&self, event: AuditEvent) -> Result<()> {
        match self.inner.audit.record_now(event) {
            Ok(recorded) => recorded,
            Err(event) => self.inner.audit.record(event).await,
        }
    }

    pub(crate) fn inner_cache(&self) -> &Cache {
        &self.inner.cache
    }

    pub(crate) fn grace_period(&self) -> chrono::Duration {
        self.inner.grace_period
    }
}

/// A loaded handle and the version it serves (for audit).
struct Loaded<C: Credential>(AnyManaged<C>, u64);

impl<C: Credential> Loaded<C> {
    fn version(&self) -> u64 {
        self.1
    }
}

/// The version `get` serves: the current one of an active (or rotating) credential.
pub(crate) fn served_version<'r>(id: &str, record: &'r Record) -> Result<&'r SealedVersion> {
    match record.meta.state {
        LifecycleState::Active | LifecycleState::Rotating => {}
        LifecycleState::Revoked => return Err(Error::Revoked { id: id.to_owned() }),
        state => return Err(Error::NotActive { id: id.to_owned(), state }),
    }
    record.versions.iter().rev().find(|version| version.state == VersionState::Current).ok_or_else(
        || Error::CorruptRecord { reason: format!("credential `{id}` has no current version") },
    )
}
