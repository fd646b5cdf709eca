//! The access policy the read benches run under: 100 grants, one of which lets `reader` read
//! `github/*`.

use credential::{AccessPolicy, Grant};

/// An admin grant, 98 grants for other teams, and `reader`'s read grant on `github/*`.
pub(crate) fn hundred_grants(reader: &str) -> AccessPolicy {
    let mut policy = AccessPolicy::new().grant(Grant::admin("operator", "*"));
    for team in 0..98 {
        policy = policy
            .grant(Grant::read(&format!("workflow/team-{team}:*"), &format!("team-{team}/*")));
    }
    policy.grant(Grant::read(reader, "github/*"))
}
