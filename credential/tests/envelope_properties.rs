//! Property tests: opening arbitrary or mutated bytes never panics and never succeeds by accident.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use crate::support;

use credential::hazmat::{self, SealContext, envelope_key_id};
use credential::{Error, KeyRing};
use proptest::prelude::*;

static RING: LazyLock<KeyRing> = LazyLock::new(|| KeyRing::generate().unwrap());

fn context() -> SealContext<'static> {
    SealContext::new("prop/id", 7, "prop")
}

// Random bytes reach the parser's every branch (each length short of a header, a wrong version,
// every key-id length, a tag that does not verify) many times over within a few thousand cases:
// 10,000 run in well under a second. `CREDENTIAL_STRESS=1`: 100,000.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(support::stress::count(10_000, 100_000) as u32))]

    #[test]
    fn random_bytes_never_open_and_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        prop_assert!(matches!(hazmat::open(&RING, &context(), &bytes), Err(Error::Decrypt)));
        let _ = envelope_key_id(&bytes);
    }
}

// One to three flipped bytes anywhere in an envelope: each case hits the header, the nonce, the
// ciphertext or the tag, and 5,000 cases hit every one of them hundreds of times.
// `CREDENTIAL_STRESS=1`: 50,000.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(support::stress::count(5_000, 50_000) as u32))]

    #[test]
    fn mutated_envelopes_never_open(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let original = hazmat::seal(&RING, &context(), &plaintext).unwrap();
        let mut sealed = original.clone();
        for (index, mask) in edits {
            let at = index.index(sealed.len());
            sealed[at] ^= mask;
        }
        // Two edits at one position can cancel out.
        prop_assume!(sealed != original);
        prop_assert!(matches!(hazmat::open(&RING, &context(), &sealed), Err(Error::Decrypt)));
    }
}
