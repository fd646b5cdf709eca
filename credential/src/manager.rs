//! The manager: lifecycle transitions, access checks, audit and the cache around a store and a
//! key ring.

mod access;
mod cache;
mod context;
mod core;
mod decisions;
mod field_values;
mod ops;
mod refresh;
mod registry;
mod resolve;
mod rotation;
mod template;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

pub use self::access::{AccessPolicy, Grant, Permission, Principal};
pub use self::cache::CacheConfig;
pub use self::context::Context;
use self::core::versions::{self, VersionRules};
use self::core::{Change, Core, Decode, Parts};
pub use self::field_values::{FieldInput, FieldValues};
use self::ops::AnyState;
pub use self::ops::{
    Active, AnyManaged, Draft, DynManaged, ExportedCredential, ExportedVersion, FieldView, Live,
    Managed, RekeyProgress, RekeyReport, RevealedField, Revoked, Rotating, State,
};
pub use self::refresh::{RefreshConfig, RefreshContext, RefreshError, Refresher};
use self::refresh::{Refreshers, Refreshing};
pub(crate) use self::registry::Decoder;
use self::registry::KindRegistry;
pub use self::resolve::ResolveOptions;
pub use self::rotation::{
    RotationConfig, RotationContext, RotationError, RotationOutcome, RotationPolicy,
    RotationReport, RotationStep, Rotator, StepReport,
};
use self::rotation::{Rotators, Schedule};
use crate::audit::{AuditAction, AuditQuery, AuditSink, MemoryAuditSink, RestoreCheck};
use crate::crypto::KeyId;
use crate::masking::Masker;
use crate::store::{
    KeyUsage, LifecycleState, ListFilter, Record, RecordMeta, Store, VersionState, check_id,
};
use crate::{Credential, Error, KeyRing, Result};

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
    core: Arc<Core>,
    /// Who the manager's operations are attributed to and checked as.
    actor: Principal,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("environment", &self.core.environment())
            .field("principal", &self.actor)
            .field("key", self.core.ring().current_id())
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
    refreshers: Refreshers,
    sole_writer: bool,
    require_tags: bool,
    masker_capacity: usize,
    rotators: Rotators,
    schedule: Schedule,
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
    /// as, unless [`Manager::acting_as`] names another. Default: `Principal::named("operator")`.
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
    ///
    /// Over a store without a change feed (environment variables, a composite over a store
    /// without one, most stores of your own), nothing tells the manager of changes made through other
    /// managers, so a cached value is served for at most
    /// [`MAX_FEED_LAG`](crate::store::MAX_FEED_LAG) after it was loaded, whatever the time to
    /// live: a revoke committed anywhere is refused by every manager within 100 ms, as on a store
    /// with a feed. See [`sole_writer`](Self::sole_writer) to lift that bound.
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Declares this manager the only writer of its store, so that over a store without a change
    /// feed its cache serves values for their whole time to live: its own commits, which
    /// invalidate the cache, are then all the changes there are.
    ///
    /// The trade-off: if anything else does write the store (another manager, process or
    /// machine, an operator's tool), a revoke or rotation made there keeps being served here
    /// until the cached value's time to live runs out. Stores with a change feed ignore this.
    ///
    /// ```
    /// use credential::{KeyRing, Manager, MemoryStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::builder()
    ///     .store(MemoryStore::new())
    ///     .key_ring(KeyRing::generate()?)
    ///     .sole_writer()
    ///     .build()
    ///     .await?;
    /// # let _ = manager;
    /// # Ok(()) }
    /// ```
    pub fn sole_writer(mut self) -> Self {
        self.sole_writer = true;
        self
    }

    /// Refuses records without a tag, as it refuses records whose tag does not match.
    ///
    /// Every write through a manager tags the record: a MAC under the master key over what
    /// decides what is served (see `FORMAT.md`), checked on every read. Records written before
    /// records were tagged have none and are served until their next write tags it (`cred
    /// doctor` names them; [`Manager::rekey`] tags them all). Meanwhile someone who can write
    /// the store, but lacks the master key, could strip a record's tag and then edit it. Once
    /// no untagged record is left, require tags to close that.
    ///
    /// ```
    /// use credential::{KeyRing, Manager, MemoryStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::builder()
    ///     .store(MemoryStore::new())
    ///     .key_ring(KeyRing::generate()?)
    ///     .require_tags()
    ///     .build()
    ///     .await?;
    /// # let _ = manager;
    /// # Ok(()) }
    /// ```
    pub fn require_tags(mut self) -> Self {
        self.require_tags = true;
        self
    }

    /// How many bytes of secret values the manager's [`Masker`] holds; past it, the values it
    /// learned first are no longer masked. Default: [`DEFAULT_CAPACITY`](crate::masking::DEFAULT_CAPACITY).
    pub fn masker_capacity(mut self, bytes: usize) -> Self {
        self.masker_capacity = bytes;
        self
    }

    /// Teaches the manager to decode kind `C` by name (templates, untyped operations). Every
    /// non-generic type that derives [`Credential`] in the program is known already, whether or
    /// not this process ever names it (the derive registers it at link time), and so are the
    /// built-in kinds: `register` is for generic types, whose every instance is a kind of its own.
    pub fn register<C: Credential>(self) -> Self {
        self.kinds.register::<C>();
        self
    }

    /// Refreshes credentials of `R::Credential`'s kind with `refresher` when they expire or come
    /// close to it (see [`Refresher`]). One refresher per kind; a later one replaces an earlier.
    pub fn refresher<R: Refresher>(mut self, refresher: R) -> Self {
        self.kinds.register::<R::Credential>();
        self.refreshers.register(refresher);
        self
    }

    /// Rotates credentials of `R::Credential`'s kind at their target system with `rotator`, on
    /// [`Manager::rotate_now`] and on the schedule's policies (see [`Rotator`]). One rotator per
    /// kind; a later one replaces an earlier.
    pub fn rotator<R: Rotator>(mut self, rotator: R) -> Self {
        self.kinds.register::<R::Credential>();
        self.rotators.register(rotator);
        self
    }

    /// Rotates the credentials `policy` covers when they fall due, from a task the manager owns
    /// (it starts with the manager and ends with its last handle). The first policy that matches
    /// an id applies.
    pub fn rotation_policy(mut self, policy: RotationPolicy) -> Self {
        self.schedule.policies.push(policy);
        self
    }

    /// How rotations run: deadline, lease, the schedule's tick and its retries. Default:
    /// [`RotationConfig::default`].
    pub fn rotation_config(mut self, config: RotationConfig) -> Self {
        self.rotators.config = config;
        self
    }

    /// When credentials are refreshed and how long callers wait. Default:
    /// [`RefreshConfig::default`].
    pub fn refresh_config(mut self, config: RefreshConfig) -> Self {
        self.refreshers.config = config;
        self
    }

    /// Builds the manager, checking that the key ring holds every master key the records of its
    /// environment are sealed under.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing store or key ring or invalid settings,
    /// [`Error::WrongMasterKey`] for a ring that lacks a key in use, or a store error.
    pub async fn build(mut self) -> Result<Manager> {
        let store = self.store.take().ok_or(Error::Config { reason: "no store was given" })?;
        let ring = self.ring.take().ok_or(Error::Config { reason: "no key ring was given" })?;
        if self.max_versions < 2 {
            return Err(Error::Config { reason: "max_versions must be at least 2" });
        }
        check_id(&self.environment).map_err(|_| Error::Config {
            reason: "the environment name is not a valid id segment",
        })?;
        // Only this environment's records: another environment in the same store may use its own
        // master keys. A store that keeps the set answers without a record being read.
        let in_use = match store.key_ids_in_use(&self.environment).await? {
            Some(in_use) => in_use,
            None => {
                let own_records = ListFilter::all().environment(self.environment.clone());
                let metas = store.list(&own_records).await?;
                KeyUsage::of(&metas).of_environment(&self.environment)
            }
        };
        for key_id in &in_use {
            ring.check(&KeyId::parse(key_id)?)?;
        }
        self.assemble(store, ring)
    }

    /// The manager over `store` and `ring`, whose keys have been checked.
    fn assemble(self, store: Arc<dyn Store>, ring: KeyRing) -> Result<Manager> {
        let grace_period = chrono::Duration::from_std(self.grace_period)
            .map_err(|_| Error::Config { reason: "the grace period is too long" })?;
        let refresh = self.refreshers.config;
        if refresh.lease <= refresh.deadline {
            return Err(Error::Config { reason: "the refresh lease must outlast its deadline" });
        }
        let rotation = self.rotators.config;
        if rotation.lease <= rotation.deadline {
            return Err(Error::Config { reason: "the rotation lease must outlast its deadline" });
        }
        let lease_holder = lease_holder()?;
        let core = Core::start(Parts {
            store,
            ring,
            environment: self.environment,
            audit: self.audit.unwrap_or_else(|| Arc::new(MemoryAuditSink::new())),
            policy: self.policy,
            rules: VersionRules { grace_period, max_versions: self.max_versions },
            cache: self.cache,
            kinds: self.kinds,
            refresh: Box::new(Refreshing::new(self.refreshers, lease_holder.clone())),
            operator: self.operator,
            sole_writer: self.sole_writer,
            require_tags: self.require_tags,
            masker: Masker::with_capacity(self.masker_capacity),
            lease_holder,
            rotators: self.rotators,
            schedule: self.schedule,
        })?;
        let manager = Manager::over(core);
        manager.core.start_schedule();
        Ok(manager)
    }
}

/// A name for this manager on refresh and rotation leases: the process id and 64 random bits, so
/// that two managers never take each other's lease for their own.
fn lease_holder() -> Result<String> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|_| Error::RandomUnavailable)?;
    Ok(format!("{}/{:016x}", std::process::id(), u64::from_le_bytes(random)))
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
    /// A manager for tests, in one line: a fresh [`MemoryStore`](crate::MemoryStore), a generated
    /// master key, no access policy (everything is allowed) and a [`MemoryAuditSink`]. Feature
    /// `testing`.
    ///
    /// ```
    /// use credential::kinds::ApiKey;
    /// use credential::{Manager, Principal};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::for_testing()?;
    /// manager.create("stripe", ApiKey::new("sk_test_1".into())).await?.activate().await?;
    /// let key = manager.context(Principal::named("test")).get::<ApiKey>("stripe").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::RandomUnavailable`] when the operating system gives no randomness for the key.
    #[cfg(any(test, feature = "testing"))]
    pub fn for_testing() -> Result<Manager> {
        let builder = Self::builder();
        builder.assemble(Arc::new(crate::MemoryStore::new()), KeyRing::generate()?)
    }

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
            kinds: KindRegistry::with_linked_kinds(),
            refreshers: Refreshers::new(RefreshConfig::default()),
            sole_writer: false,
            require_tags: false,
            masker_capacity: crate::masking::DEFAULT_CAPACITY,
            rotators: Rotators::default(),
            schedule: Schedule::default(),
        }
    }

    /// The masker that knows every secret value this manager served or was given, to pass what
    /// actions write through: see [`masking`](crate::masking).
    ///
    /// ```
    /// use credential::kinds::BearerToken;
    /// use credential::{Manager, Principal};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::for_testing()?;
    /// let token = BearerToken { token: "tok_3f9a2c71".into(), expires: None };
    /// manager.create("api/main", token).await?.activate().await?;
    /// let ctx = manager.context(Principal::new("workflow/sync", "action/fetch"));
    /// let token = ctx.get::<BearerToken>("api/main").await?;
    /// # use credential::ExposeSecret;
    /// let line = format!("GET /items?access_token={}", token.token.expose_secret());
    /// assert_eq!(manager.masker().mask(&line), "GET /items?access_token=***");
    /// # Ok(()) }
    /// ```
    pub fn masker(&self) -> &Masker {
        self.core.masker()
    }

    /// Shuts the manager down, and every clone of it and context from it: what an engine awaits
    /// before its process exits.
    ///
    /// In order: reads and listings are refused from now on ([`Error::ShutDown`]); scheduled
    /// rotations stop (one cut off mid-step is resumed by the next run anywhere, as after a
    /// crash); refreshes in progress land; then nothing more is changed; the change feed stops;
    /// the cache drops every decrypted value; the audit sink writes every event it holds and
    /// closes. A second call has nothing left to do.
    ///
    /// Dropping the last clone without shutting down stops the background tasks too, but does
    /// not wait: a durable sink's writer may still hold the last read events when the process
    /// exits, and they are lost.
    ///
    /// ```
    /// use credential::Manager;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::for_testing()?;
    /// // ... serve actions ...
    /// manager.shutdown().await?;
    /// assert!(matches!(manager.list(&credential::store::ListFilter::all()).await, Err(credential::Error::ShutDown)));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Unwritten`](crate::audit::Unwritten): the audit events the sink could not write, handed
    /// back rather than lost (it converts into [`Error::Audit`] for `?`).
    pub async fn shutdown(&self) -> std::result::Result<(), crate::audit::Unwritten> {
        self.core.shutdown().await
    }

    /// Replaces the access policy of this manager and every clone of it, for every read and
    /// change that starts after this returns: a grant removed is refused from then on, also for
    /// credentials in the cache (every read is checked before the cache is consulted). `None`
    /// allows everything again, as a manager built without a policy does. A read already past
    /// its check when this is called may still complete.
    ///
    /// The change is audited first (action `set_policy`, credential `*`, the number of grants as
    /// its reason), as this manager's principal; when the audit fails, the old policy stays.
    /// Whoever holds the manager may call it: keep the manager itself away from code that
    /// should not change the policy.
    ///
    /// ```
    /// use credential::{AccessPolicy, Manager, Principal, kinds::ApiKey};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::for_testing()?;
    /// manager.create("stripe", ApiKey::new("sk_test_1".into())).await?.activate().await?;
    /// let ctx = manager.context(Principal::new("workflow/billing", "action/charge"));
    /// ctx.get::<ApiKey>("stripe").await?;
    /// let policy = AccessPolicy::from_json(r#"{ "grants": [
    ///     { "permission": "read", "principal": "workflow/reports:*", "credential": "*" }
    /// ] }"#)?;
    /// manager.set_access_policy(Some(policy)).await?;
    /// assert!(ctx.get::<ApiKey>("stripe").await.is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Audit`] when the change could not be audited, [`Error::ShutDown`].
    pub async fn set_access_policy(&self, policy: Option<AccessPolicy>) -> Result<()> {
        self.core.set_policy(&self.actor, policy).await
    }

    /// The access policy in force (none: everything is allowed).
    pub fn access_policy(&self) -> Option<AccessPolicy> {
        self.core.policy().map(|policy| AccessPolicy::clone(&policy))
    }

    /// The environment this manager works in.
    pub fn environment(&self) -> &str {
        self.core.environment()
    }

    /// The audit sink.
    pub fn audit(&self) -> &dyn AuditSink {
        self.core.audit()
    }

    /// Who this manager's operations are attributed to and checked as.
    pub fn principal(&self) -> &Principal {
        &self.actor
    }

    /// The same manager acting as `principal`: every operation through the returned manager, and
    /// through the handles it gives out, is checked and audited as `principal` (an operator's
    /// name in a command-line tool, say). Cheap; shares the store, cache and audit sink.
    ///
    /// ```
    /// use credential::audit::AuditQuery;
    /// use credential::{Manager, MemoryStore, KeyRing, Principal, kinds::ApiKey};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::builder().store(MemoryStore::new()).key_ring(KeyRing::generate()?).build().await?;
    /// let alice = manager.acting_as(Principal::named("ops:alice"));
    /// alice.create("stripe/live", ApiKey::new("sk_live_example".into())).await?;
    /// let events = manager.audit().query(&AuditQuery::all().principal("ops:alice")).await?;
    /// assert_eq!(events.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn acting_as(&self, principal: Principal) -> Manager {
        Manager { core: Arc::clone(&self.core), actor: principal }
    }

    /// A context for reading credentials as `principal`.
    pub fn context(&self, principal: Principal) -> Context {
        Context::new(Arc::clone(&self.core), principal)
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
        self.core.kinds().register::<C>();
        credential.validate()?;
        self.core.learn(&credential);
        let written =
            self.create_record(id, C::KIND, credential.expires_at(), &credential.encode()).await?;
        Ok(Managed::from_parts(self.clone(), id.to_owned(), written, Arc::new(credential)))
    }

    /// Creates credential `id` of registered kind `kind` as a draft from field values, without
    /// the Rust type: each value goes through its field's codec and the kind's validation rules
    /// as a typed [`create`](Self::create) would.
    ///
    /// ```
    /// use credential::{FieldValues, LifecycleState, Manager, MemoryStore, KeyRing};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::builder().store(MemoryStore::new()).key_ring(KeyRing::generate()?).build().await?;
    /// let values = FieldValues::new().plain("username", "ops").secret("password", "hunter2".into());
    /// let draft = manager.create_dyn("basic_auth", "svc/legacy", &values).await?;
    /// assert_eq!(draft.state(), LifecycleState::Draft);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownKind`] for a kind the manager does not know, [`Error::UnknownField`],
    /// [`Error::InvalidFieldValue`] (naming the field, never the value), [`Error::Decode`] for a
    /// missing required field, [`Error::Validation`]; otherwise as [`create`](Self::create).
    pub async fn create_dyn(
        &self,
        kind: &str,
        id: &str,
        values: &FieldValues,
    ) -> Result<DynManaged> {
        check_id(id)?;
        let decoder = self
            .core
            .kinds()
            .decoder(kind)
            .ok_or_else(|| Error::UnknownKind { kind: kind.to_owned() })?;
        let (encoded, decoded) = decoder.encode_fields(values)?;
        self.core.learn(decoded.fields.as_ref());
        let written =
            self.create_record(id, decoder.kind, decoded.fields.expires_at(), &encoded).await?;
        Ok(DynManaged::new(self.clone(), id.to_owned(), written))
    }

    /// Commits a new draft record of `kind` holding `plaintext` sealed as its first version.
    async fn create_record(
        &self,
        id: &str,
        kind: &str,
        expires_at: Option<chrono::DateTime<Utc>>,
        plaintext: &[u8],
    ) -> Result<Record> {
        let storage_id = self.core.storage_id(id);
        let sealed = self.core.seal_at(&storage_id, 1, kind, plaintext)?;
        let now = Utc::now();
        let record = Record {
            meta: RecordMeta {
                id: storage_id,
                kind: kind.to_owned(),
                environment: self.core.environment().to_owned(),
                state: LifecycleState::Draft,
                revision: 0,
                created_at: now,
                updated_at: now,
                expires_at,
                tags: Default::default(),
                key_id: self.core.ring().current_id().as_str().to_owned(),
                refresh: Default::default(),
                tag: Vec::new(),
                trail: None,
            },
            versions: vec![versions::sealed_at(1, VersionState::Pending, sealed, now)],
        };
        let change = Change {
            id,
            expected: None,
            record,
            action: AuditAction::Create,
            version: Some(1),
            reason: None,
        };
        self.core.commit(&self.actor, change).await
    }

    /// Loads credential `id` in whatever state it is.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::KindMismatch`], [`Error::AccessDenied`], [`Error::Decrypt`],
    /// or a store error.
    pub async fn load<C: Credential>(&self, id: &str) -> Result<AnyManaged<C>> {
        self.core.kinds().register::<C>();
        self.core
            .read_record(&self.actor, id, AuditAction::Load, |record| {
                let decoder = self.core.decoder(record, Decode::As(Decoder::of::<C>()))?;
                let decode = |state: VersionState| -> Result<Arc<C>> {
                    let version = versions::required(id, record, state)?;
                    self.core.open_as(id, record, version, decoder)?.typed::<C>()
                };
                let (manager, id, record_owned) = (self.clone(), id.to_owned(), record.clone());
                let state = match record.meta.state {
                    LifecycleState::Draft => AnyState::Draft(Managed::from_parts(
                        manager,
                        id,
                        record_owned,
                        decode(VersionState::Pending)?,
                    )),
                    LifecycleState::Active => AnyState::Active(Managed::from_parts(
                        manager,
                        id,
                        record_owned,
                        decode(VersionState::Current)?,
                    )),
                    LifecycleState::Rotating => {
                        let data = (decode(VersionState::Current)?, decode(VersionState::Pending)?);
                        AnyState::Rotating(Managed::from_parts(manager, id, record_owned, data))
                    }
                    LifecycleState::Revoked => {
                        AnyState::Revoked(Managed::from_parts(manager, id, record_owned, ()))
                    }
                };
                Ok((AnyManaged::new(state), versions::current_number(record)))
            })
            .await
    }

    /// Loads credential `id` without its Rust type: kind, state, revision, history, a redacted
    /// view by field name, and the lifecycle transitions. For operator tools that were not built
    /// with every credential type.
    ///
    /// ```
    /// use credential::{LifecycleState, Manager, MemoryStore, KeyRing, kinds::ApiKey};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::builder().store(MemoryStore::new()).key_ring(KeyRing::generate()?).build().await?;
    /// manager.create("stripe/live", ApiKey::new("sk_live_example".into())).await?;
    /// let handle = manager.load_dyn("stripe/live").await?;
    /// assert_eq!((handle.kind(), handle.state()), ("api_key", LifecycleState::Draft));
    /// let revoked = handle.activate().await?.revoke("rotated out").await?;
    /// assert_eq!(revoked.state(), LifecycleState::Revoked);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::AccessDenied`], [`Error::InvalidId`], or a store error.
    pub async fn load_dyn(&self, id: &str) -> Result<DynManaged> {
        let record = self
            .core
            .read_record(&self.actor, id, AuditAction::Load, |record| {
                Ok((record.clone(), versions::current_number(record)))
            })
            .await?;
        Ok(DynManaged::new(self.clone(), id.to_owned(), record))
    }

    /// The versions of credential `id`, oldest first, with their states and timestamps.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::AccessDenied`], or a store error.
    pub async fn history(&self, id: &str) -> Result<Vec<VersionInfo>> {
        self.core
            .read_record(&self.actor, id, AuditAction::History, |record| {
                Ok((VersionInfo::of(record), versions::current_number(record)))
            })
            .await
    }

    /// The metadata of the credentials of this environment that pass `filter` (ids shown without
    /// the environment prefix).
    ///
    /// # Errors
    /// A store error.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        self.core.list(filter).await
    }

    /// The kinds this manager can build and decode by name (built-in, registered, or used
    /// through a typed call), sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.core.kinds().kinds()
    }

    /// The fields of kind `kind`, in declaration order: which are secret, and their stored
    /// names. `None` for a kind this manager does not know.
    pub fn kind_fields(&self, kind: &str) -> Option<&'static [crate::field::FieldSchema]> {
        self.core.kinds().decoder(kind).map(|decoder| decoder.fields)
    }

    /// Takes credential `id` out of the store in plaintext, every version that still has a
    /// payload opened, for a backup that a [`import`](Self::import) under any master key can
    /// restore. Audited as [`AuditAction::Export`]; checked as a read.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::AccessDenied`], [`Error::Decrypt`], or a store error.
    pub async fn export(&self, id: &str) -> Result<ExportedCredential> {
        ops::export(self, id).await
    }

    /// Restores an exported credential as a new record, every payload sealed under the key
    /// ring's current key, with its state, versions and timestamps. Audited as
    /// [`AuditAction::Import`]; checked as admin.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the id exists, [`Error::CorruptRecord`] for versions that do not
    /// fit together, [`Error::Decode`] for a payload its (known) kind cannot decode, otherwise as
    /// [`create`](Self::create).
    pub async fn import(&self, exported: &ExportedCredential) -> Result<DynManaged> {
        ops::import(self, exported).await
    }

    /// Imports every credential of `exported`, or none of them: each is checked (as
    /// [`import`](Self::import) checks it) and sealed before the first is written, and when a
    /// write fails (an id that exists already, say), the ones written before it are deleted
    /// again and their imports audited as failed, so neither the store nor the trail keeps them.
    ///
    /// # Errors
    /// The first credential's error; nothing was imported. If taking back an import fails as
    /// well, that error is returned instead, and the credentials not taken back remain.
    pub async fn import_all(&self, exported: &[ExportedCredential]) -> Result<Vec<DynManaged>> {
        ops::import_all(self, exported).await
    }

    /// Re-seals every credential of this environment under the key ring's current key, one
    /// record at a time with compare-and-swap, calling `progress` after each. Each re-seal is
    /// authorized as admin and audited like any other change.
    ///
    /// Records written before records were tagged are rewritten too, tagged (see `FORMAT.md`).
    ///
    /// Safe to interrupt and to run again: records already under the current key are skipped,
    /// and until the old key is retired every record opens under some key of the ring. Retire the
    /// old key only once [`RekeyReport::keys_in_use`] holds just the current one.
    ///
    /// # Errors
    /// The first store, access or audit error; [`Error::Decrypt`] for a record no key of the ring
    /// opens; [`Error::Conflict`] when a record kept changing for 16 tries in a row.
    pub async fn rekey(&self, progress: impl FnMut(RekeyProgress)) -> Result<RekeyReport> {
        ops::rekey(self, progress).await
    }

    /// Compares every record of this environment with the last change the audit trail records of
    /// it: names the records behind it (put back from an older backup or snapshot, a rolled-back
    /// row) and the revoked credentials that are readable again (put back from before the
    /// revoke). A restored record carries its own authentic tag, so only the trail can tell.
    ///
    /// Reads the whole trail through [`AuditSink::query`]: an operator's check (`cred doctor`),
    /// not a per-read one. Changes recorded before events carried revisions are not compared.
    ///
    /// ```
    /// use credential::{Manager, kinds::ApiKey};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
    /// let manager = Manager::for_testing()?;
    /// manager.create("stripe", ApiKey::new("sk_test_1".into())).await?.activate().await?;
    /// assert!(manager.verify_against_trail().await?.is_clean());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The audit sink's or the store's error.
    pub async fn verify_against_trail(&self) -> Result<RestoreCheck> {
        let events = self.core.audit().query(&AuditQuery::all()).await?;
        let records = self.core.list_stored(&ListFilter::all()).await?;
        Ok(RestoreCheck::of(&events, self.environment(), &records))
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// The manager over `core`, acting as its operator.
    pub(crate) fn over(core: Arc<Core>) -> Self {
        Self { actor: core.operator().clone(), core }
    }

    pub(crate) fn actor(&self) -> &Principal {
        &self.actor
    }
}

impl VersionInfo {
    fn of(record: &Record) -> Vec<Self> {
        record
            .versions
            .iter()
            .map(|version| VersionInfo {
                version: version.version,
                state: version.state,
                created_at: version.created_at,
                changed_at: version.changed_at,
            })
            .collect()
    }
}
