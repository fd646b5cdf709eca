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
