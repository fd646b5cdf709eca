//! Property tests: opening arbitrary or mutated bytes never panics and never succeeds by accident.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use credential::hazmat::{self, SealContext, envelope_key_id};
use credential::{Error, KeyRing};
use proptest::prelude::*;

static RING: LazyLock<KeyRing> = LazyLock::new(|| KeyRing::generate().unwrap());

fn context() -> SealContext<'static> {
    SealContext::new("prop/id", 7, "prop")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100_000))]

    #[test]
    fn random_bytes_never_open_and_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        prop_assert!(matches!(hazmat::open(&RING, &context(), &bytes), Err(Error::Decrypt)));
        let _ = envelope_key_id(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

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
