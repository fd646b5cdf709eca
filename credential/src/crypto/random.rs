//! Randomness from the operating system, drawn through a per-thread pool.
//!
//! A `getrandom` call costs about as much as encrypting a few hundred bytes, so nonces are taken
//! from a 4 KiB buffer filled by one call. The pool remembers the process id it was filled in: a
//! forked child, which inherits a copy of the buffer, refills before its first draw instead of
//! handing out the parent's nonces again. Every byte is handed out once.
//!
//! Key material does not come from the pool; [`fill_secret`] reads the OS directly.

use std::cell::RefCell;

use crate::{Error, Result};

const POOL_BYTES: usize = 4096;

struct Pool {
    bytes: [u8; POOL_BYTES],
    next: usize,
    filled_in: u32,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_BYTES], next: POOL_BYTES, filled_in: 0 })
    };
}

/// Fills `out` (at most 64 bytes) with fresh random bytes for a public value such as a nonce.
pub(crate) fn fill_public(out: &mut [u8]) -> Result<()> {
    debug_assert!(out.len() <= 64);
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let pid = std::process::id();
        if pool.next + out.len() > POOL_BYTES || pool.filled_in != pid {
            getrandom::fill(&mut pool.bytes).map_err(|_| Error::RandomUnavailable)?;
            pool.next = 0;
            pool.filled_in = pid;
        }
        let start = pool.next;
        out.copy_from_slice(&pool.bytes[start..start + out.len()]);
        pool.next += out.len();
        Ok(())
    })
}

/// Fills `out` with random bytes straight from the operating system, for key material.
pub(crate) fn fill_secret(out: &mut [u8]) -> Result<()> {
    getrandom::fill(out).map_err(|_| Error::RandomUnavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_draws_differ_across_refills() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 * POOL_BYTES / 12 {
            let mut nonce = [0u8; 12];
            fill_public(&mut nonce).unwrap();
            assert!(seen.insert(nonce), "nonce repeated");
        }
    }
}
