//! Who may do what: principals, grants and the access policy.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Who is asking: a workflow and the action in it.
///
/// ```
/// use credential::Principal;
///
/// let principal = Principal::new("workflow/billing", "action/charge");
/// assert_eq!(principal.to_string(), "workflow/billing:action/charge");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    name: Arc<str>,
}

impl Principal {
    /// The principal of `action` in `workflow`, named `workflow:action`.
    ///
    /// The first `:` of the name separates the two parts, so a `:` inside `workflow` is written
    /// `%3A` (and `%` as `%25`): `a:b` + `c` and `a` + `b:c` are two principals, not one.
    ///
    /// ```
    /// use credential::Principal;
    ///
    /// assert_eq!(Principal::new("a:b", "c").name(), "a%3Ab:c");
    /// assert_eq!(Principal::new("a", "b:c").name(), "a:b:c");
    /// ```
    pub fn new(workflow: &str, action: &str) -> Self {
        let mut name = String::with_capacity(workflow.len() + 1 + action.len());
        let mut rest = workflow;
        while let Some(at) = rest.find(['%', ':']) {
            name.push_str(&rest[..at]);
            name.push_str(if rest[at..].starts_with('%') { "%25" } else { "%3A" });
            rest = &rest[at + 1..];
        }
        name.push_str(rest);
        name.push(':');
        name.push_str(action);
        Self { name: Arc::from(name) }
    }

    /// An operator or service acting outside any workflow, named as given.
    pub fn named(name: &str) -> Self {
        Self { name: Arc::from(name) }
    }

    /// The full name that grant patterns are matched against.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, as the principal shares it.
    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Principal({})", self.name)
    }
}

/// What a grant allows. Each level includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Permission {
    /// Read credentials (`get`, `load`, `history`).
    Read,
    /// Create, activate, rotate, commit and roll back.
    Write,
    /// Everything, including revoke and restoring old versions.
    Admin,
}

/// One grant: principals matching a pattern get a permission on credential ids matching a
/// pattern, optionally until a time and only in one environment.
///
/// Patterns are exact text where `*` stands for any run of characters (slashes included).
///
/// ```
/// use credential::Grant;
///
/// let grant = Grant::read("workflow/billing:*", "stripe/*").in_environment("production");
/// # let _ = grant;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    permission: Permission,
    principal: String,
    credential: String,
    #[serde(rename = "until", default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
}

impl Grant {
    /// A grant of `permission` to principals matching `principal` on ids matching `credential`.
    pub fn new(permission: Permission, principal: &str, credential: &str) -> Self {
        Self {
            principal: principal.to_owned(),
            credential: credential.to_owned(),
            permission,
            expires_at: None,
            environment: None,
        }
    }

    /// [`Permission::Read`].
    pub fn read(principal: &str, credential: &str) -> Self {
        Self::new(Permission::Read, principal, credential)
    }

    /// [`Permission::Write`].
    pub fn write(principal: &str, credential: &str) -> Self {
        Self::new(Permission::Write, principal, credential)
    }

    /// [`Permission::Admin`].
    pub fn admin(principal: &str, credential: &str) -> Self {
        Self::new(Permission::Admin, principal, credential)
    }

    /// The grant stops applying at `at`.
    pub fn until(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The grant applies only in `environment`.
    pub fn in_environment(mut self, environment: &str) -> Self {
        self.environment = Some(environment.to_owned());
        self
    }

    fn allows(
        &self,
        principal: &str,
        credential: &str,
        environment: &str,
        permission: Permission,
        now: DateTime<Utc>,
    ) -> bool {
        self.permission >= permission
            && self.expires_at.is_none_or(|expires_at| now < expires_at)
            && self.environment.as_deref().is_none_or(|only| only == environment)
            && glob_matches(&self.principal, principal)
            && glob_matches(&self.credential, credential)
    }
}

/// The grants in force. Once a manager has a policy, everything not granted is denied.
///
/// A policy can be kept as JSON ([`from_json`](Self::from_json), [`to_json`](Self::to_json)):
/// an object with one member, `grants`, a list of grants, each with `permission` (`read`,
/// `write` or `admin`), `principal` and `credential` (patterns where `*` stands for any run of
/// characters), and optionally `until` (an RFC 3339 time) and `environment`. Any other member
/// is an error, so a misspelt one is not silently ignored.
///
/// ```
/// use credential::AccessPolicy;
///
/// let policy = AccessPolicy::from_json(r#"{
///   "grants": [
///     { "permission": "read", "principal": "workflow/billing:*", "credential": "stripe/*" },
///     { "permission": "admin", "principal": "ops:*", "credential": "*",
///       "until": "2030-01-01T00:00:00Z", "environment": "production" }
///   ]
/// }"#)?;
/// assert_eq!(policy.grants().len(), 2);
/// assert_eq!(AccessPolicy::from_json(&policy.to_json())?, policy);
/// # Ok::<(), credential::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicy {
    grants: Vec<Grant>,
}

/// A decision and how long it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) allowed: bool,
    pub(crate) valid_until: Option<DateTime<Utc>>,
}

impl AccessPolicy {
    /// A policy that grants nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a grant.
    pub fn grant(mut self, grant: Grant) -> Self {
        self.grants.push(grant);
        self
    }

    /// The grants, in the order they were given.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// A policy from its JSON form (see the type's documentation).
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] naming the line and column of what is wrong: not JSON, a
    /// member missing or unknown, a permission or time that does not parse, an empty pattern.
    pub fn from_json(json: &str) -> Result<Self> {
        let policy: Self = serde_json::from_str(json)
            .map_err(|error| Error::InvalidPolicy { reason: error.to_string() })?;
        for (index, grant) in policy.grants.iter().enumerate() {
            if grant.principal.is_empty() || grant.credential.is_empty() {
                return Err(Error::InvalidPolicy {
                    reason: format!(
                        "grant {}: an empty pattern matches nothing; `*` matches everything",
                        index + 1
                    ),
                });
            }
        }
        Ok(policy)
    }

    /// The policy's JSON form, as [`from_json`](Self::from_json) reads it.
    pub fn to_json(&self) -> String {
        // Text, an enum and times: nothing here can fail to serialize.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Whether `principal` may do `permission` on `credential` in `environment` at `now`.
    pub fn allows(
        &self,
        principal: &Principal,
        credential: &str,
        environment: &str,
        permission: Permission,
        now: DateTime<Utc>,
    ) -> bool {
        self.decide(principal, credential, environment, permission, now).allowed
    }

    /// The decision, valid until the earliest future expiry among the grants (when any grant
    /// expires, the answer may change).
    pub(crate) fn decide(
        &self,
        principal: &Principal,
        credential: &str,
        environment: &str,
        permission: Permission,
        now: DateTime<Utc>,
    ) -> Decision {
        let allowed = self
            .grants
            .iter()
            .any(|grant| grant.allows(principal.name(), credential, environment, permission, now));
        let valid_until = self
            .grants
            .iter()
            .filter_map(|grant| grant.expires_at)
            .filter(|expiry| now < *expiry)
            .min();
        Decision { allowed, valid_until }
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_whose_parts_would_collide_stay_apart() {
        for (workflow, action, name) in [
            ("wf", "step", "wf:step"),
            ("w", "f:step", "w:f:step"),
            ("w:f", "step", "w%3Af:step"),
            ("w%3Af", "step", "w%253Af:step"),
            ("%", ":", "%25::"),
            ("", "", ":"),
        ] {
            assert_eq!(Principal::new(workflow, action).name(), name);
        }
        let long = "w:".repeat(200);
        let expected = format!("{}:step", "w%3A".repeat(200));
        assert_eq!(Principal::new(&long, "step").name(), expected);
    }

    #[test]
    fn globs_match_like_shell_stars_across_slashes() {
        assert!(glob_matches("github/*", "github/main"));
        assert!(glob_matches("github/*", "github/a/b"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "a-x-b-y-c"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(!glob_matches("github/*", "gitlab/main"));
        assert!(!glob_matches("*.prod", "db.staging"));
        assert!(!glob_matches("ab*ba", "aba"));
    }

    #[test]
    fn permissions_include_lower_levels_and_grants_expire() {
        let now = Utc::now();
        let policy = AccessPolicy::new()
            .grant(Grant::admin("ops:*", "*"))
            .grant(Grant::read("wf:*", "github/*").until(now + chrono::Duration::hours(1)))
            .grant(Grant::read("wf:*", "aws/*").in_environment("staging"));
        let ops = Principal::named("ops:alice");
        let wf = Principal::new("wf", "step");
        assert!(policy.allows(&ops, "anything", "production", Permission::Read, now));
        assert!(policy.allows(&wf, "github/main", "production", Permission::Read, now));
        assert!(!policy.allows(&wf, "github/main", "production", Permission::Write, now));
        assert!(!policy.allows(
            &wf,
            "github/main",
            "production",
            Permission::Read,
            now + chrono::Duration::hours(2)
        ));
        assert!(!policy.allows(&wf, "aws/key", "production", Permission::Read, now));
        assert!(policy.allows(&wf, "aws/key", "staging", Permission::Read, now));
    }
}
