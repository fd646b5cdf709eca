//! The commit path, in order: **authorize** (write, or admin for revoke, restore, rekey and
//! import) → **audit** the mutation durably → **anchor** the trail's line in the record and tag
//! it → **compare-and-swap** on the record revision → **invalidate** the cache. A mutation whose
//! event cannot be recorded does not happen; a tag or swap that fails is audited as failed.

use chrono::{DateTime, Utc};

use super::Core;
use crate::audit::{AuditAction, bounds};
use crate::manager::access::Permission;
use crate::manager::access::Principal;
use crate::store::check_id;
use crate::store::{Precondition, Record, RefreshLease};
use crate::telemetry::{self, Operation, StoreOp};
use crate::{Error, Result};

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

/// What a mutation's events say: which credential, what, the version it names and the revision
/// it writes.
#[derive(Clone, Copy)]
struct Mutation<'a> {
    id: &'a str,
    action: AuditAction,
    version: Option<u64>,
    revision: u64,
}

impl Core {
    /// Commits `change` as `actor`; returns the record as written, at its new revision.
    pub(crate) async fn commit(&self, actor: &Principal, change: Change<'_>) -> Result<Record> {
        if !telemetry::ENABLED {
            return self.commit_as(actor, change).await;
        }
        let operation = Operation::commit();
        let kind = operation.traced().then(|| change.record.meta.kind.clone());
        let (id, action, version) = (change.id, change.action, change.version);
        let result = telemetry::awaited_within!(operation, self.commit_as(actor, change));
        let error = result.as_ref().err();
        operation.commit_ended(&self.telemetry, action, error, kind.as_deref(), || {
            let credential = bounds::credential(id, error);
            self.event(Utc::now(), actor, credential, action, version, error, None)
        });
        result
    }

    async fn commit_as(&self, actor: &Principal, change: Change<'_>) -> Result<Record> {
        self.committing()?;
        let Change { id, expected, mut record, action, version, reason } = change;
        let now = Utc::now();
        // The revision the store gives the record if the swap succeeds: each write adds one.
        let mutation = Mutation { id, action, version, revision: expected.map_or(1, |at| at + 1) };
        let permission = match action {
            AuditAction::Revoke
            | AuditAction::RollbackTo
            | AuditAction::Rekey
            | AuditAction::Import => Permission::Admin,
            _ => Permission::Write,
        };
        let authorized = check_id(id).and_then(|()| self.authorize(actor, id, permission, now));
        if let Err(denied) = authorized {
            self.audit_mutation(now, actor, &mutation, Some(&denied), None).await?;
            return Err(denied);
        }
        record.meta.updated_at = now;
        // Audited before it happens: an unaudited change must never exist.
        self.audit_mutation(now, actor, &mutation, None, reason).await?;
        // The record names the trail's line of this change, so a trail cut short shows.
        if let Some(anchor) = self.audit.trail_anchor() {
            record.meta.trail = Some(anchor);
        }
        let precondition = expected.map_or(Precondition::Absent, Precondition::Revision);
        let written = async {
            let record = self.tagged(record)?;
            let put = self.store.put(record.clone(), precondition);
            let revision = self.telemetry.store_call(StoreOp::Put, put).await?;
            Ok((record, revision))
        }
        .await;
        // Whatever the outcome, a value cached or being loaded may now be stale.
        self.cache.invalidate(id);
        match written {
            Ok((mut record, revision)) => {
                record.meta.revision = revision;
                Ok(record)
            }
            Err(error) => {
                let error = match error {
                    Error::Conflict { .. } => Error::Conflict { id: id.to_owned() },
                    other => other,
                };
                // The change did not happen; say so after the event that announced it.
                let _ = self.audit_mutation(Utc::now(), actor, &mutation, Some(&error), None).await;
                Err(error)
            }
        }
    }

    /// Sets `record`'s refresh lease, by compare-and-swap on its revision, and tags it anew;
    /// returns the new revision. Refresh bookkeeping, not a change to the credential: nothing
    /// else in the record changes, so it is not audited and what the cache serves stays valid.
    pub(crate) async fn set_lease(
        &self,
        mut record: Record,
        lease: Option<RefreshLease>,
    ) -> Result<u64> {
        self.committing()?;
        let expected = Precondition::Revision(record.meta.revision);
        record.meta.refresh.lease = lease;
        let record = self.tagged(record)?;
        self.telemetry.store_call(StoreOp::Put, self.store.put(record, expected)).await
    }

    /// Takes back the import of `id`, written at `revision`, because another credential of the
    /// same import failed with `cause`: the record is deleted, then the import's failure is
    /// audited after the event that announced it (so the trail, like the store, has it never
    /// happen). A record changed since is left alone ([`Error::Conflict`]).
    pub(crate) async fn withdraw_import(
        &self,
        actor: &Principal,
        id: &str,
        revision: u64,
        cause: &Error,
    ) -> Result<()> {
        let storage_id = self.storage_id(id);
        self.telemetry
            .store_call(StoreOp::Delete, self.store.delete(&storage_id, revision))
            .await?;
        self.cache.invalidate(id);
        let mutation = Mutation { id, action: AuditAction::Import, version: None, revision };
        let reason = Some("withdrawn: another credential of the same import failed");
        self.audit_mutation(Utc::now(), actor, &mutation, Some(cause), reason).await
    }

    /// The store's clock, which refresh leases are measured on.
    pub(crate) async fn store_now(&self) -> Result<DateTime<Utc>> {
        self.store.now().await
    }

    /// Records the event of `mutation` by `actor`, ending with `error` (none: it is about to
    /// happen), durably.
    async fn audit_mutation(
        &self,
        time: DateTime<Utc>,
        actor: &Principal,
        mutation: &Mutation<'_>,
        error: Option<&Error>,
        reason: Option<&str>,
    ) -> Result<()> {
        let Mutation { id, action, version, revision } = *mutation;
        let credential = bounds::credential(id, error);
        let mut event = self.event(time, actor, credential, action, version, error, reason);
        event.revision = Some(revision);
        self.audit.record(event).await
    }
}
