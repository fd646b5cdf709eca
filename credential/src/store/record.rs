//! What a store holds: plaintext metadata and sealed versions. Never a plaintext secret.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::Error;
use crate::audit::TrailAnchor;

/// A stored credential: metadata in the clear, every version sealed.
///
/// Its fields are public for stores to read and write; it is `#[non_exhaustive]` because the
/// format may grow, so make one with [`Record::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// Plaintext metadata.
    pub meta: RecordMeta,
    /// The sealed versions, oldest first.
    pub versions: Vec<SealedVersion>,
}

/// A record's plaintext metadata: what listing returns. Make one with [`RecordMeta::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordMeta {
    /// The credential id (see [`check_id`](crate::store::check_id) for what is allowed).
    pub id: String,
    /// The credential kind.
    pub kind: String,
    /// The environment the credential belongs to (`dev`, `staging`, `production`, ...).
    pub environment: String,
    /// The lifecycle state.
    pub state: LifecycleState,
    /// Bumped by the store on every write; the compare-and-swap token.
    pub revision: u64,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When the record was last written.
    pub updated_at: DateTime<Utc>,
    /// When the current version expires, if it does.
    pub expires_at: Option<DateTime<Utc>>,
    /// Free-form tags.
    pub tags: BTreeSet<String>,
    /// The id of the master key the versions are sealed under.
    pub key_id: String,
    /// Where an automatic refresh stands: a lease held by the process refreshing it, or a mark
    /// that the provider refused the refresh and an operator must put in a new credential.
    pub refresh: RefreshMark,
    /// The manager's tag over everything in the record that decides what is served (see
    /// `FORMAT.md`), made under the master key `key_id` names: a record whose tag does not match
    /// is refused as tampered. Stores keep it as they are given it. Empty for a record written
    /// before records were tagged: it is served until its next write tags it, and `cred
    /// doctor` names it.
    pub tag: Vec<u8>,
    /// The last line of the manager's hash-chained audit trail that was durable when the record
    /// was last changed, so at least the line recording that change; `None` when the manager's
    /// sink keeps no chain, or for a record written before records named one. A trail ending
    /// before a line a record names had its end cut off (see
    /// [`JsonlAuditSink::verify_against_store`](crate::audit::JsonlAuditSink::verify_against_store)).
    pub trail: Option<TrailAnchor>,
}

/// Where an automatic refresh of a credential stands, kept with its metadata so that every process
/// on the store sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshMark {
    /// The lease of the process refreshing the credential now, taken by compare-and-swap before it
    /// asks the provider.
    pub lease: Option<RefreshLease>,
    /// Set when the provider refused the refresh (`invalid_grant`): reads fail with
    /// [`Error::ReauthRequired`] until a new version is committed.
    pub reauth_required: bool,
}

/// A lease on refreshing a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshLease {
    /// Who holds it: a name unique to one manager in one process.
    pub holder: String,
    /// When it lapses, on the store's clock ([`Store::now`](crate::store::Store::now)).
    pub until: DateTime<Utc>,
}

/// One sealed version of a credential. Make one with [`SealedVersion::new`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealedVersion {
    /// The version number, from 1.
    pub version: u64,
    /// What the version is for.
    pub state: VersionState,
    /// When it was sealed.
    pub created_at: DateTime<Utc>,
    /// When its state last changed (when it became current, deprecated or destroyed).
    pub changed_at: DateTime<Utc>,
    /// The sealed envelope; empty once destroyed.
    pub sealed: Vec<u8>,
}

impl Record {
    /// A record of `meta` and `versions` (oldest first).
    ///
    /// ```
    /// use credential::store::{Record, RecordMeta, SealedVersion, VersionState};
    ///
    /// let now = chrono::Utc::now();
    /// let meta = RecordMeta::new("default/github/main", "github", "default", "k1", now);
    /// let version = SealedVersion::new(1, VersionState::Pending, b"sealed".to_vec(), now);
    /// let record = Record::new(meta, vec![version]);
    /// assert_eq!(record.versions.len(), 1);
    /// ```
    pub fn new(meta: RecordMeta, versions: Vec<SealedVersion>) -> Self {
        Self { meta, versions }
    }
}

impl Record {
    /// What the record's tag covers, in a fixed byte form (see `FORMAT.md`): the id, kind,
    /// environment, state, expiry, master key id and refresh mark, for each version its
    /// number, state, times and whether its payload is destroyed, and the trail anchor when the
    /// record names one (appended only then, so a record without one is covered as before). Not the revision, the write
    /// time or the tags, which decide nothing that is served; not the payloads, which their own
    /// seal binds to the id, version and kind.
    pub(crate) fn covered_bytes(&self) -> Vec<u8> {
        fn text(out: &mut Vec<u8>, text: &str) {
            out.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        fn time(out: &mut Vec<u8>, at: DateTime<Utc>) {
            out.extend_from_slice(&at.timestamp().to_be_bytes());
            out.extend_from_slice(&at.timestamp_subsec_nanos().to_be_bytes());
        }
        let meta = &self.meta;
        let mut out = Vec::with_capacity(128 + 48 * self.versions.len());
        out.extend_from_slice(b"credential/record/v1");
        for part in [&meta.id, &meta.kind, &meta.environment] {
            text(&mut out, part);
        }
        text(&mut out, meta.state.as_str());
        match meta.expires_at {
            None => out.push(0),
            Some(at) => {
                out.push(1);
                time(&mut out, at);
            }
        }
        text(&mut out, &meta.key_id);
        match &meta.refresh.lease {
            None => out.push(0),
            Some(lease) => {
                out.push(1);
                text(&mut out, &lease.holder);
                time(&mut out, lease.until);
            }
        }
        out.push(u8::from(meta.refresh.reauth_required));
        out.extend_from_slice(&(self.versions.len() as u64).to_be_bytes());
        for version in &self.versions {
            out.extend_from_slice(&version.version.to_be_bytes());
            text(&mut out, version.state.as_str());
            time(&mut out, version.created_at);
            time(&mut out, version.changed_at);
            out.push(u8::from(version.sealed.is_empty()));
        }
        if let Some(anchor) = &meta.trail {
            out.push(1);
            text(&mut out, &anchor.trail);
            out.extend_from_slice(&anchor.line.to_be_bytes());
            text(&mut out, &anchor.hash);
        }
        out
    }
}

impl RecordMeta {
    /// The metadata of a new draft `id` of `kind` in `environment`, sealed under master key
    /// `key_id`, created at `now`: revision 0, no expiry, no tags, no refresh mark.
    pub fn new(id: &str, kind: &str, environment: &str, key_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            id: id.to_owned(),
            kind: kind.to_owned(),
            environment: environment.to_owned(),
            state: LifecycleState::Draft,
            revision: 0,
            created_at: now,
            updated_at: now,
            expires_at: None,
            tags: BTreeSet::new(),
            key_id: key_id.to_owned(),
            refresh: RefreshMark::default(),
            tag: Vec::new(),
            trail: None,
        }
    }
}

impl RefreshLease {
    /// A lease held by `holder` until `until` (on the store's clock).
    pub fn new(holder: &str, until: DateTime<Utc>) -> Self {
        Self { holder: holder.to_owned(), until }
    }
}

impl SealedVersion {
    /// Version `version` in `state`, holding envelope `sealed`, sealed and last changed at `at`.
    pub fn new(version: u64, state: VersionState, sealed: Vec<u8>, at: DateTime<Utc>) -> Self {
        Self { version, state, created_at: at, changed_at: at, sealed }
    }
}

impl fmt::Debug for SealedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedVersion")
            .field("version", &self.version)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("changed_at", &self.changed_at)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// The stored text form.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                match text {
                    $($text => Ok(Self::$variant),)*
                    _ => Err(Error::CorruptRecord {
                        reason: format!(concat!("unknown ", stringify!($name), " `{}`"), text.escape_debug()),
                    }),
                }
            }
        }
    };
}

text_enum!(
    /// Where a credential is in its lifecycle.
    LifecycleState {
        /// Created, not yet served.
        Draft = "draft",
        /// Served.
        Active = "active",
        /// Served, with a pending version waiting for commit or rollback.
        Rotating = "rotating",
        /// Terminal: secrets destroyed, metadata kept.
        Revoked = "revoked",
    }
);

text_enum!(
    /// What a sealed version is for.
    VersionState {
        /// The version being served.
        Current = "current",
        /// Sealed by a rotation, waiting for commit or rollback.
        Pending = "pending",
        /// Replaced; readable by explicit version during the grace period.
        Deprecated = "deprecated",
        /// Its payload was destroyed.
        Destroyed = "destroyed",
    }
);

/// What a write or delete expects to find: the compare-and-swap precondition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// The record must not exist.
    Absent,
    /// The record must exist at exactly this revision.
    Revision(u64),
}

/// Which records [`Store::list`](crate::store::Store::list) returns; every set criterion must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this state.
    pub state: Option<LifecycleState>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only records carrying this tag.
    pub tag: Option<String>,
    /// Only ids starting with this prefix.
    pub id_prefix: Option<String>,
}

impl ListFilter {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only `kind`.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Only `state`.
    pub fn state(mut self, state: LifecycleState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only `environment`.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Only records tagged `tag`.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Only ids starting with `prefix`.
    pub fn id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.id_prefix = Some(prefix.into());
        self
    }

    /// Whether `meta` passes the filter.
    pub fn matches(&self, meta: &RecordMeta) -> bool {
        self.kind.as_ref().is_none_or(|kind| *kind == meta.kind)
            && self.state.is_none_or(|state| state == meta.state)
            && self.environment.as_ref().is_none_or(|environment| *environment == meta.environment)
            && self.tag.as_ref().is_none_or(|tag| meta.tags.contains(tag))
            && self.id_prefix.as_ref().is_none_or(|prefix| meta.id.starts_with(prefix.as_str()))
    }
}
