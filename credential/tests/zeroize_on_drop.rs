//! Secrets are wiped before their memory goes back to the allocator: an inspecting global
//! allocator scans every freed block for a planted canary.
//!
//! This is the one place in the workspace that needs `unsafe`: a global allocator cannot be
//! written without it, and reading freed memory is the point of the test.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use credential::prelude::*;

const CANARY: &[u8] = b"CANARY-9b1e77d0-wipe-me-please";

static SCANNING: AtomicBool = AtomicBool::new(false);
static UNWIPED_BLOCKS: AtomicUsize = AtomicUsize::new(0);

struct WipeChecking;

// SAFETY: every call is forwarded to `System` unchanged; `dealloc` only reads the block it is
// about to free, which is valid for `layout.size()` bytes until the forwarded call.
unsafe impl GlobalAlloc for WipeChecking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SCANNING.load(Ordering::SeqCst) {
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if block.windows(CANARY.len()).any(|window| window == CANARY) {
                UNWIPED_BLOCKS.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: WipeChecking = WipeChecking;

fn canary_text() -> &'static str {
    std::str::from_utf8(CANARY).unwrap()
}

#[derive(Credential)]
#[credential(kind = "wiped")]
struct Wiped {
    #[secret]
    #[credential(validate(non_empty, length(max = 64), pattern = "^CANARY-"))]
    token: SecretString,
    #[secret(reveal_last = 4)]
    masked: SecretString,
    #[secret]
    key: SecretSlice<u8>,
    #[secret]
    optional: Option<SecretString>,
    #[secret]
    #[credential(validate(url))]
    webhook: SecretString,
    name: String,
}

/// Counts unwiped blocks freed while `work` runs.
fn unwiped_blocks_during(work: impl FnOnce()) -> usize {
    UNWIPED_BLOCKS.store(0, Ordering::SeqCst);
    SCANNING.store(true, Ordering::SeqCst);
    work();
    SCANNING.store(false, Ordering::SeqCst);
    UNWIPED_BLOCKS.load(Ordering::SeqCst)
}

#[test]
fn secrets_are_wiped_through_the_whole_credential_lifecycle() {
    // The detector works: a plain `String` holding the canary is freed without wiping.
    let control = unwiped_blocks_during(|| drop(String::from(canary_text())));
    assert_eq!(control, 1, "the inspecting allocator must see an unwiped String");

    let leaks = unwiped_blocks_during(|| {
        // Built at its exact size: growing a `String` would itself leave copies behind.
        let prefix = "https://hooks.example.com/";
        let mut webhook = String::with_capacity(prefix.len() + CANARY.len());
        webhook.push_str(prefix);
        webhook.push_str(canary_text());
        let credential = Wiped {
            token: canary_text().into(),
            masked: canary_text().into(),
            key: CANARY.to_vec().into(),
            optional: Some(canary_text().into()),
            webhook: SecretString::from(webhook),
            name: "plain".into(),
        };
        credential.validate().unwrap();
        let shown = format!("{credential:?} {credential:#?} {}", credential.redacted());
        assert!(shown.contains("****ease"));
        let encoded = credential.encode();
        let decoded = Wiped::decode(&encoded).unwrap();
        assert_eq!(decoded.token.expose_secret(), canary_text());
        assert!(Wiped::decode(&encoded[..encoded.len() - 3]).is_err());
        drop((credential, decoded, encoded));
    });
    assert_eq!(leaks, 0, "{leaks} freed block(s) still held the secret");
}

/// `prefix` + the canary + `suffix`, built at its exact size.
fn with_canary(prefix: &str, suffix: &str) -> String {
    let mut text = String::with_capacity(prefix.len() + CANARY.len() + suffix.len());
    text.push_str(prefix);
    text.push_str(canary_text());
    text.push_str(suffix);
    text
}

#[test]
fn secrets_are_wiped_on_error_paths_sealing_templates_and_parsers() {
    use credential::KeyRing;
    use credential::crypto::MasterKey;
    use credential::field::Zeroizing;
    use credential::hazmat::{self, SealContext};
    use credential::kinds::{BasicAuth, Database};

    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let ring = KeyRing::generate().unwrap();
    let manager = runtime
        .block_on(Manager::builder().store(MemoryStore::new()).key_ring(ring.clone()).build())
        .unwrap();
    let ctx = manager.context(Principal::named("reader"));
    runtime.block_on(async {
        let basic = BasicAuth { username: "ops".into(), password: canary_text().into() };
        manager.create("svc/basic", basic).await.unwrap().activate().await.unwrap();
    });

    let leaks = unwiped_blocks_during(|| {
        // The `url` rule on a secret that is not a URL: the error path.
        let bad_webhook = Wiped {
            token: canary_text().into(),
            masked: canary_text().into(),
            key: CANARY.to_vec().into(),
            optional: None,
            webhook: SecretString::from(with_canary("not a url ", "")),
            name: "plain".into(),
        };
        assert!(bad_webhook.validate().is_err());
        drop(bad_webhook);

        // Sealing and opening.
        let context = SealContext::new("default/svc/x", 1, "wiped");
        let plaintext = Zeroizing::new(CANARY.to_vec());
        let sealed = hazmat::seal(&ring, &context, &plaintext).unwrap();
        let opened = hazmat::open(&ring, &context, &sealed).unwrap();
        assert_eq!(&*opened, CANARY);
        drop((plaintext, sealed, opened));

        // Templates, and a credential read through the manager.
        runtime.block_on(async {
            let header = ctx.resolve("Basic {{svc/basic.password}}").await.unwrap();
            assert!(header.expose_secret().ends_with(canary_text()));
            let basic = ctx.get::<BasicAuth>("svc/basic").await.unwrap();
            drop((header, basic));
        });

        // Connection URLs, parsed and refused.
        let url = Zeroizing::new(with_canary(
            "postgresql://app:",
            "@db.internal:5432/main?sslmode=require",
        ));
        let parsed = Database::from_url(&url).unwrap();
        assert_eq!(parsed.password.expose_secret(), canary_text());
        let rebuilt = parsed.url();
        drop((parsed, rebuilt));
        // The test's own texts are wiped too (`Zeroizing`), so only the library's copies count.
        for refused in [
            with_canary("postgresql://app:", "@/main"),
            with_canary("postgresql://app:", "@db/main?password=again"),
            with_canary("redis://app:", "@db/main"),
            with_canary("postgresql://app:", "@db:99999999/main"),
        ] {
            let refused = Zeroizing::new(refused);
            assert!(Database::from_url(&refused).is_err());
        }
        drop(url);

        // A master key whose bytes hold the canary.
        let mut bytes = Zeroizing::new([0u8; credential::crypto::MASTER_KEY_LEN]);
        bytes[..CANARY.len()].copy_from_slice(CANARY);
        drop(KeyRing::new(MasterKey::from_bytes(bytes)));
    });
    assert_eq!(leaks, 0, "{leaks} freed block(s) still held the secret");
}
