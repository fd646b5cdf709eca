//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A fresh scratch directory (mode 0700) under the system temp dir, unique to this process and
/// `name`, removed with everything in it when dropped.
pub(crate) struct ScratchDir(PathBuf);

impl Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn scratch_dir(name: &str) -> ScratchDir {
    let dir = std::env::temp_dir().join(format!("credential-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    ScratchDir(dir)
}
