//! Property tests: encode/decode round-trips arbitrary values, and decoding arbitrary bytes never
//! panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use credential::prelude::*;
use proptest::prelude::*;

#[derive(Credential)]
#[credential(kind = "arbitrary")]
struct Arbitrary {
    #[secret]
    token: SecretString,
    #[secret]
    key: SecretSlice<u8>,
    #[secret]
    refresh: Option<SecretString>,
    name: String,
    count: u64,
    delta: i32,
    flag: bool,
    tags: Vec<String>,
    options: BTreeMap<String, String>,
    #[credential(expires_at)]
    expires: Option<DateTime<Utc>>,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        "\\PC{0,64}",
        proptest::collection::vec(any::<char>(), 1000..5000).prop_map(String::from_iter),
    ]
}

fn timestamp() -> impl Strategy<Value = DateTime<Utc>> {
    (-8_000_000_000_000i64..8_000_000_000_000, 0u32..1_000_000_000)
        .prop_map(|(seconds, nanos)| DateTime::from_timestamp(seconds, nanos).unwrap())
}

prop_compose! {
    fn arbitrary()(
        token in text(),
        key in proptest::collection::vec(any::<u8>(), 0..2048),
        refresh in proptest::option::of(text()),
        name in text(),
        count in any::<u64>(),
        delta in any::<i32>(),
        flag in any::<bool>(),
        tags in proptest::collection::vec(text(), 0..8),
        options in proptest::collection::btree_map(text(), text(), 0..8),
        expires in proptest::option::of(timestamp()),
    ) -> Arbitrary {
        Arbitrary {
            token: token.into(),
            key: key.into(),
            refresh: refresh.map(Into::into),
            name, count, delta, flag, tags, options, expires,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_then_decode_is_identity(original in arbitrary()) {
        let bytes = original.encode();
        prop_assert_eq!(bytes.len(), bytes.capacity(), "the sizing pass must be exact");
        let decoded = Arbitrary::decode(&bytes).unwrap();
        prop_assert_eq!(decoded.token.expose_secret(), original.token.expose_secret());
        prop_assert_eq!(decoded.key.expose_secret(), original.key.expose_secret());
        prop_assert_eq!(
            decoded.refresh.as_ref().map(|s| s.expose_secret().to_owned()),
            original.refresh.as_ref().map(|s| s.expose_secret().to_owned())
        );
        prop_assert_eq!(&decoded.name, &original.name);
        prop_assert_eq!(decoded.count, original.count);
        prop_assert_eq!(decoded.delta, original.delta);
        prop_assert_eq!(decoded.flag, original.flag);
        prop_assert_eq!(&decoded.tags, &original.tags);
        prop_assert_eq!(&decoded.options, &original.options);
        prop_assert_eq!(decoded.expires, original.expires);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Arbitrary::decode(&bytes);
    }

    #[test]
    fn decoding_mutated_encodings_never_panics(
        original in arbitrary(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = original.encode().to_vec();
        for (index, byte) in edits {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        let _ = Arbitrary::decode(&bytes);
    }
}
