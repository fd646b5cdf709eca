//! The access policy's decisions, remembered per principal, credential id and permission level
//! until a grant involved may expire: the policy (its patterns matched grant by grant) is
//! evaluated once per id, not per read.
//!
//! They live in a bounded concurrent map keyed by principal and id, so that threads reading as
//! one principal, or reading one credential, rarely touch the same lock, and a principal asking
//! for endless made-up ids cannot grow it without bound.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use quick_cache::{Equivalent, UnitWeighter};

use super::access::{AccessPolicy, Decision, Permission, Principal};
use crate::Result;
use crate::store::check_id;

/// How many (principal, id) pairs are remembered.
const CAPACITY: usize = 100_000;

/// What is remembered for one principal and id: a decision per permission level.
type Slots = [Option<Decision>; 3];

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

/// A policy and the decisions it made.
pub(crate) struct Decisions {
    policy: AccessPolicy,
    made: Map,
}

impl Decisions {
    pub(crate) fn new(policy: AccessPolicy) -> Self {
        let made = Map::with(
            CAPACITY,
            u64::try_from(CAPACITY).unwrap_or(u64::MAX),
            UnitWeighter,
            foldhash::fast::RandomState::default(),
            Default::default(),
        );
        Self { policy, made }
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
        let slot = permission as usize;
        let fresh = |decision: &Decision| decision.valid_until.is_none_or(|until| now < until);
        let remembered = self.made.get(&Borrowed(principal.name(), credential));
        if let Some(decision) = remembered.and_then(|slots| slots[slot]).filter(fresh) {
            return Ok(decision);
        }
        check_id(credential)?;
        let decision = self.policy.decide(principal, credential, environment, permission, now);
        let mut slots = remembered.unwrap_or_default();
        slots[slot] = Some(decision);
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
        let decisions = Decisions::new(policy);
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
        let decisions = Decisions::new(AccessPolicy::new());
        let wf = Principal::new("wf", "step");
        for n in 0..CAPACITY + 1_000 {
            decisions
                .decide(&wf, &format!("id/{n}"), "default", Permission::Read, Utc::now())
                .unwrap();
        }
        let shards = decisions.made.num_shards();
        assert!(decisions.made.len() <= CAPACITY + shards);
    }
}
