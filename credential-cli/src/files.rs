//! Files the command line writes: new, private, flushed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::exit::{Failure, Outcome};

/// Writes `bytes` to a new file at `path` (never over an existing one), mode 0600 from the
/// start, flushed to disk.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Outcome {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| Failure::io(path.display(), "create", &error))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| Failure::io(path.display(), "write", &error))
}
