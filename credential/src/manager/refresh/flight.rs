//! One refresh per fleet: within a process every caller shares one flight per credential, and
//! across processes a lease taken by compare-and-swap on the record comes **before** the request
//! to the provider.
//!
//! A flight, in order: read the record (already refreshed by someone else? done) → if another
//! holder's lease has not lapsed on the store's clock, wait for it to finish → take the lease →
//! ask the refresher → commit the new version (or the reauthentication mark) through the commit
//! path, which clears the lease. A swap that loses to another write is retried on the new record
//! as long as the lease is still ours, so a rotated refresh token the provider handed out is not
//! dropped. A process that crashes after the request leaves a lease that lapses; the next holder
//! may then replay the old refresh token once, which a provider that detects reuse answers with
//! `invalid_grant`, and the credential is marked for reauthentication.
//!
//! Flights run as tasks of their own: a caller that stops waiting does not cancel a refresh
//! halfway, between the provider's answer and the commit.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{RefreshContext, RefreshError, Refreshers};
use crate::audit::AuditAction;
use crate::manager::cache::Cached;
use crate::manager::core::{Change, Core, Decode, ReadFuture, Refresh, versions};
use crate::manager::registry::Decoded;
use crate::store::{Record, RefreshLease, RefreshMark};
use crate::telemetry;
use crate::{Error, Result};

/// The outcome of a flight, once it has landed.
type Landing = Option<Result<()>>;

/// Refresh as the core's read path sees it: the refreshers by kind, and the flights in progress
/// in this process (and those that failed a moment ago) by credential id.
pub(crate) struct Refreshing(Arc<Flights>);

struct Flights {
    refreshers: Refreshers,
    by_id: Mutex<HashMap<Arc<str>, Flight>>,
    /// This manager's name on refresh leases, unique across processes.
    holder: String,
}

impl Refreshing {
    /// Refresh with `refreshers`, leasing as `holder`.
    pub(crate) fn new(refreshers: Refreshers, holder: String) -> Self {
        Self(Arc::new(Flights { refreshers, by_id: Mutex::default(), holder }))
    }
}

impl Refresh for Refreshing {
    fn due_at(
        &self,
        kind: &str,
        issued: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        self.0.refreshers.due_at(kind, issued, expires_at)
    }

    fn serve_due<'a>(
        &'a self,
        core: &'a Arc<Core>,
        id: &'a str,
        cached: Cached,
        now: DateTime<Utc>,
        decode: Decode,
    ) -> ReadFuture<'a> {
        Box::pin(self.0.serve_due(core, id, cached, now, decode))
    }

    fn landed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.0.landed())
    }
}

enum Flight {
    Running(watch::Receiver<Landing>),
    /// Failed: until `until`, callers get `error` rather than a new flight, so a provider or
    /// store in trouble is not asked again on every read.
    Failed {
        until: Instant,
        error: Error,
    },
}

/// How long a failed refresh is not tried again in this process.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// How many times a flight retries its final swap after losing to another write.
const COMMIT_ATTEMPTS: usize = 5;
/// How often a flight looks at another holder's lease: from the first value, doubling to the last.
const LEASE_POLL: (Duration, Duration) = (Duration::from_millis(25), Duration::from_millis(400));
/// The reason recorded with the reauthentication mark.
const REAUTH_REASON: &str =
    "the provider refused the refresh (invalid_grant): rotate in a new credential";

impl Flights {
    /// Returns once no flight is running: each one in progress has landed (a read that was
    /// already under way may start one more, which is waited for too).
    async fn landed(&self) {
        loop {
            let running: Vec<_> = {
                let by_id = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
                by_id
                    .values()
                    .filter_map(|flight| match flight {
                        Flight::Running(landing) => Some(landing.clone()),
                        Flight::Failed { .. } => None,
                    })
                    .collect()
            };
            if running.is_empty() {
                return;
            }
            for mut landing in running {
                // A flight whose task is gone has landed too, as far as waiting goes.
                let _ = landing.wait_for(Option::is_some).await;
            }
        }
    }

    /// Serves `cached`, which is due for refresh at `now`: a valid one at once with a refresh
    /// started in the background, an expired one only once its refresh has landed (waiting up to
    /// the configured bound).
    async fn serve_due(
        self: &Arc<Self>,
        core: &Arc<Core>,
        id: &str,
        cached: Cached,
        now: DateTime<Utc>,
        decode: Decode,
    ) -> Result<Cached> {
        let mut landing = self.join_flight(core, &cached.id);
        if cached.expires_at.is_none_or(|expires_at| now < expires_at) {
            return Ok(cached);
        }
        let wait = self.refreshers.config.wait;
        let landed = tokio::time::timeout(wait, async {
            let outcome = landing.wait_for(Option::is_some).await.map_err(|_| Error::TaskFailed)?;
            outcome.clone().unwrap_or(Err(Error::TaskFailed))
        })
        .await;
        match landed {
            Ok(outcome) => outcome?,
            Err(_) => {
                return Err(Error::RefreshFailed {
                    id: id.to_owned(),
                    reason: format!("no new credential within {wait:?}"),
                    transient: true,
                });
            }
        }
        // Another process's refresh may have landed before this cache heard of it.
        let fresh = core.reload_current(id, decode).await?;
        if fresh.expires_at.is_some_and(|expires_at| expires_at <= Utc::now()) {
            return Err(Error::Expired { id: id.to_owned() });
        }
        Ok(fresh)
    }

    /// The flight refreshing `id`: the one in progress, the failure of one a moment ago, or a
    /// new one.
    fn join_flight(self: &Arc<Self>, core: &Arc<Core>, id: &Arc<str>) -> watch::Receiver<Landing> {
        let mut by_id = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        match by_id.get(id) {
            Some(Flight::Running(landing)) => return landing.clone(),
            Some(Flight::Failed { until, error }) if Instant::now() < *until => {
                return watch::channel(Some(Err(error.clone()))).1;
            }
            _ => {}
        }
        let (sender, landing) = watch::channel(None);
        // Outside a Tokio runtime there is nowhere to run a flight: the read still serves a
        // valid credential, and the first caller on a runtime starts the refresh.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return landing;
        };
        by_id.insert(Arc::clone(id), Flight::Running(landing.clone()));
        drop(by_id);
        let (flights, core, id) = (Arc::clone(self), Arc::clone(core), Arc::clone(id));
        drop(runtime.spawn(async move {
            let outcome = flights.fly(&core, &id).await;
            telemetry::refresh_landed(&id, &outcome);
            // Landed before it is forgotten: a caller joining in between still gets the outcome.
            let _ = sender.send(Some(outcome.clone()));
            let mut by_id = flights.by_id.lock().unwrap_or_else(PoisonError::into_inner);
            match outcome {
                Err(error @ Error::RefreshFailed { .. }) => {
                    let until = Instant::now() + RETRY_AFTER_FAILURE;
                    by_id.insert(id, Flight::Failed { until, error });
                }
                _ => drop(by_id.remove(&id)),
            }
        }));
        landing
    }

    /// One refresh of `id`, start to landing.
    async fn fly(&self, core: &Arc<Core>, id: &str) -> Result<()> {
        let config = self.refreshers.config;
        let deadline = Instant::now() + config.deadline;
        let Some((leased, current)) = self.take_lease(core, id, deadline).await? else {
            return Ok(());
        };
        let refresher = self
            .refreshers
            .of(current.kind)
            .ok_or_else(|| Error::UnknownKind { kind: leased.meta.kind.clone() })?;
        let context = RefreshContext::new(Arc::clone(core), id, deadline);
        match refresher.refresh(&current, &context).await {
            Ok(refreshed) => {
                self.land(core, id, leased, |record| {
                    let number = versions::next_number(record);
                    let sealed = core.seal(id, number, &record.meta.kind, &refreshed.encoded)?;
                    let after = versions::with_current(
                        record.clone(),
                        number,
                        sealed,
                        refreshed.expires_at,
                        core.rules(),
                    );
                    Ok((after, Some(number), None))
                })
                .await
            }
            Err(RefreshError::InvalidGrant) => {
                self.land(core, id, leased, |record| {
                    let mut after = record.clone();
                    after.meta.refresh = RefreshMark { lease: None, reauth_required: true };
                    Ok((after, None, Some(REAUTH_REASON)))
                })
                .await?;
                Err(Error::ReauthRequired { id: id.to_owned() })
            }
            Err(failure) => {
                release_lease(core, leased).await;
                Err(failure.for_credential(id))
            }
        }
    }

    /// The record of `id` under this manager's lease with its served version opened, or `None`
    /// when it no longer needs a refresh (another process did it while this one waited).
    async fn take_lease(
        &self,
        core: &Core,
        id: &str,
        deadline: Instant,
    ) -> Result<Option<(Record, Decoded)>> {
        let mut poll = LEASE_POLL.0;
        loop {
            let mut record = core.fetch(id).await?;
            versions::served(id, &record)?;
            if record.meta.refresh.reauth_required {
                return Err(Error::ReauthRequired { id: id.to_owned() });
            }
            let Some(current) = due(core, id, &record)? else {
                return Ok(None);
            };
            let store_now = core.store_now().await?;
            let held_by_another = record
                .meta
                .refresh
                .lease
                .as_ref()
                .is_some_and(|lease| lease.holder != self.holder && store_now < lease.until);
            if held_by_another {
                if Instant::now() + poll > deadline {
                    return Err(Error::RefreshFailed {
                        id: id.to_owned(),
                        reason: "another process holds the refresh lease".to_owned(),
                        transient: true,
                    });
                }
                tokio::time::sleep(poll).await;
                poll = (poll * 2).min(LEASE_POLL.1);
                continue;
            }
            let lease = chrono::Duration::from_std(self.refreshers.config.lease)
                .unwrap_or(chrono::Duration::MAX);
            let lease = RefreshLease { holder: self.holder.clone(), until: store_now + lease };
            match core.set_lease(record.clone(), Some(lease.clone())).await {
                Ok(revision) => {
                    record.meta.refresh.lease = Some(lease);
                    record.meta.revision = revision;
                    return Ok(Some((record, current)));
                }
                Err(Error::Conflict { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// Commits what `change` makes of the leased record, through the commit path. Losing the
    /// swap to another write is retried on the new record while the lease is still ours; once it
    /// is not, that write wins: a revoke is [`Error::Revoked`], an operator's new version is
    /// what callers read next.
    async fn land(
        &self,
        core: &Core,
        id: &str,
        mut leased: Record,
        change: impl Fn(&Record) -> Result<(Record, Option<u64>, Option<&'static str>)>,
    ) -> Result<()> {
        for _ in 0..COMMIT_ATTEMPTS {
            let (after, version, reason) = change(&leased)?;
            let commit =
                Change::replacing(id, &leased, after, AuditAction::Refresh, version, reason);
            match core.commit(core.operator(), commit).await {
                Ok(_) => return Ok(()),
                Err(Error::Conflict { .. }) => {
                    leased = core.fetch(id).await?;
                    versions::served(id, &leased)?;
                    let ours = leased
                        .meta
                        .refresh
                        .lease
                        .as_ref()
                        .is_some_and(|lease| lease.holder == self.holder);
                    if !ours {
                        // An operator's rotation or restore won: callers read what it wrote.
                        return Ok(());
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict { id: id.to_owned() })
    }
}

/// Gives the lease back after a refresh that produced nothing, so the next attempt need not wait
/// for it to lapse. Best effort: a lease left behind lapses on its own.
async fn release_lease(core: &Core, leased: Record) {
    let _ = core.set_lease(leased, None).await;
}

/// The served version of `record`, opened, when it is inside its refresh window now.
fn due(core: &Core, id: &str, record: &Record) -> Result<Option<Decoded>> {
    let served = versions::served(id, record)?;
    let decoder = core.decoder(record, Decode::ByStoredKind)?;
    let decoded = core.open_as(id, record, served, decoder)?;
    let (_, due_at) = core.expiry(record, served, &decoded);
    Ok(due_at.is_some_and(|due_at| due_at <= Utc::now()).then_some(decoded))
}
