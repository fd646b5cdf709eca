//! The access policy's decisions, remembered per principal, credential id and permission level
//! until a grant involved may expire or the policy is replaced: the policy (its patterns matched
//! grant by grant) is evaluated once per id, not per read.
//!
//! The policy can be replaced while reads go on. Each policy in force has a generation; a
//! remembered decision counts only for the generation it was made under, so once a replacement
//! returns, no read decides by the policy it replaced. A hit costs one atomic load more than a
//! fixed policy would.
//!
//! They live in a bounded concurrent map keyed by principal and id, so that threads reading as
//! one principal, or reading one credential, rarely touch the same lock, and a principal asking
//! for endless made-up ids cannot grow it without bound.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use quick_cache::{Equivalent, UnitWeighter};

use super::access::{AccessPolicy, Decision, Permission, Principal};
use crate::Result;
use crate::store::check_id;

/// How many (principal, id) pairs are remembered.
const CAPACITY: usize = 100_000;

/// What is remembered for one principal and id: a decision per permission level, with the
/// generation of the policy that made it.
type Slots = [Option<(Decision, u64)>; 3];

type Map = quick_cache::sync::Cache<
    (Arc<str>, Arc<str>),
    Slots,
    UnitWeighter,
    foldhash::fast::RandomState,
>;

/// A principal and an id as borrowed by a lookup: hashed as the owned key's tuple is.
struct Borrowed<'a>(&'a str, &'a str);

impl Hash for Borrowed<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.0, self.1).hash(state);
    }
}

impl Equivalent<(Arc<str>, Arc<str>)> for Borrowed<'_> {
    fn equivalent(&self, key: &(Arc<str>, Arc<str>)) -> bool {
        self.0 == &*key.0 && self.1 == &*key.1
    }
}

/// The policy in force (none: everything is allowed) and the decisions it made.
pub(crate) struct Decisions {
    /// The policy in force; replaced under the write lock together with `state`.
    policy: RwLock<Option<Arc<AccessPolicy>>>,
    /// The policy's generation, shifted left once, with the low bit set while there is a policy:
    /// what a read loads to know whether a remembered decision still counts. Written only under
    /// `policy`'s write lock, so a reader holding the read lock sees the two agree.
    state: AtomicU64,
    made: Map,
}

/// Everything is allowed, for as long as there is no policy.
const ALLOWED: Decision = Decision { allowed: true, valid_until: None };

impl Decisions {
    pub(crate) fn new(policy: Option<AccessPolicy>) -> Self {
        let made = Map::with(
            CAPACITY,
            u64::try_from(CAPACITY).unwrap_or(u64::MAX),
            UnitWeighter,
            foldhash::fast::RandomState::default(),
            Default::default(),
        );
        let state = AtomicU64::new(u64::from(policy.is_some()));
        Self { policy: RwLock::new(policy.map(Arc::new)), state, made }
    }

    /// The policy in force.
    pub(crate) fn policy(&self) -> Option<Arc<AccessPolicy>> {
        self.policy.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Puts `policy` in force (none: everything is allowed): every decision from now on is made
    /// by it.
    pub(crate) fn replace(&self, policy: Option<AccessPolicy>) {
        let mut current = self.policy.write().unwrap_or_else(PoisonError::into_inner);
        let generation = (self.state.load(Ordering::Acquire) >> 1) + 1;
        self.state.store(generation << 1 | u64::from(policy.is_some()), Ordering::Release);
        *current = policy.map(Arc::new);
    }

    /// The policy's decision on `principal` doing `permission` on `credential` in `environment`
    /// at `now`. An id seen for the first time is checked against the allowlist before it is
    /// decided on and remembered, so only valid ids are remembered and a remembered id needs no
    /// second check.
    ///
    /// # Errors
    /// [`Error::InvalidId`](crate::Error::InvalidId) for an id outside the allowlist.
    pub(crate) fn decide(
        &self,
        principal: &Principal,
        credential: &str,
        environment: &str,
        permission: Permission,
        now: DateTime<Utc>,
    ) -> Result<Decision> {
        let state = self.state.load(Ordering::Acquire);
        if state & 1 == 0 {
            return Ok(ALLOWED);
        }
        let slot = permission as usize;
        let fresh = |(decision, generation): &(Decision, u64)| {
            *generation == state >> 1 && decision.valid_until.is_none_or(|until| now < until)
        };
        let remembered = self.made.get(&Borrowed(principal.name(), credential));
        if let Some((decision, _)) = remembered.and_then(|slots| slots[slot]).filter(fresh) {
            return Ok(decision);
        }
        check_id(credential)?;
        // The policy and its generation as one (both change under the write lock): a decision
        // is remembered under the generation of the policy that made it.
        let (policy, generation) = {
            let policy = self.policy.read().unwrap_or_else(PoisonError::into_inner);
            (policy.clone(), self.state.load(Ordering::Acquire) >> 1)
        };
        let Some(policy) = policy else {
            return Ok(ALLOWED);
        };
        let decision = policy.decide(principal, credential, environment, permission, now);
        let mut slots = remembered.unwrap_or_default();
        slots[slot] = Some((decision, generation));
        let key = (Arc::clone(principal.shared_name()), Arc::from(credential));
        self.made.insert(key, slots);
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::access::Grant;

    #[test]
    fn decisions_are_remembered_per_principal_id_and_level_until_a_grant_expires() {
        let now = Utc::now();
        let hour = now + chrono::Duration::hours(1);
        let policy = AccessPolicy::new()
            .grant(Grant::read("wf:*", "github/*").until(hour))
            .grant(Grant::write("ops", "*"));
        let decisions = Decisions::new(Some(policy));
        let (wf, ops) = (Principal::new("wf", "step"), Principal::named("ops"));
        let decide = |principal: &Principal, id: &str, permission, at| {
            decisions.decide(principal, id, "default", permission, at).unwrap()
        };
        for _ in 0..2 {
            let read = decide(&wf, "github/main", Permission::Read, now);
            assert!(read.allowed);
            assert_eq!(read.valid_until, Some(hour));
            assert!(!decide(&wf, "github/main", Permission::Write, now).allowed);
            assert!(decide(&ops, "github/main", Permission::Write, now).allowed);
            assert!(!decide(&wf, "aws/key", Permission::Read, now).allowed);
        }
        assert!(!decide(&wf, "github/main", Permission::Read, hour).allowed, "the grant ran out");
        assert!(decisions.decide(&wf, "../x", "default", Permission::Read, now).is_err());
    }

    #[test]
    fn made_up_ids_do_not_grow_the_memory_without_bound() {
        let decisions = Decisions::new(Some(AccessPolicy::new()));
        let wf = Principal::new("wf", "step");
        for n in 0..CAPACITY + 1_000 {
            decisions
                .decide(&wf, &format!("id/{n}"), "default", Permission::Read, Utc::now())
                .unwrap();
        }
        let shards = decisions.made.num_shards();
        assert!(decisions.made.len() <= CAPACITY + shards);
    }

    #[test]
    fn a_replaced_policy_decides_at_once_even_where_a_decision_was_remembered() {
        let now = Utc::now();
        let wf = Principal::new("wf", "step");
        let decisions = Decisions::new(None);
        let decide = |decisions: &Decisions| {
            decisions.decide(&wf, "github/main", "default", Permission::Read, now).unwrap().allowed
        };
        assert!(decide(&decisions), "no policy: everything is allowed");
        decisions.replace(Some(AccessPolicy::new().grant(Grant::read("wf:*", "github/*"))));
        assert!(decide(&decisions));
        assert!(decide(&decisions), "remembered");
        decisions.replace(Some(AccessPolicy::new().grant(Grant::read("wf:*", "aws/*"))));
        assert!(!decide(&decisions), "the grant was removed");
        decisions.replace(Some(AccessPolicy::new().grant(Grant::read("wf:*", "github/*"))));
        assert!(decide(&decisions), "and given back");
        decisions.replace(None);
        assert!(decide(&decisions));
        assert_eq!(decisions.policy(), None);
    }
}
