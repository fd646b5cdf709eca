//! The file store's change feed: writers append the id of every record they replace to a log
//! file in the directory, after the replacement and under the store's lock; readers follow the
//! log from where they last stopped.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{ChangeListener, Poll};
use crate::util::regular_file::{self, Links};
use crate::{Error, Result};

/// The change log's file name in the store directory.
pub(crate) const CHANGE_LOG: &str = ".changes";
/// A log longer than this is replaced by an empty one before the next append; readers notice
/// the new file and start over.
const MAX_LOG_LEN: u64 = 1 << 20;

/// Appends `id` to the change log of `dir`. Called with the store's lock held.
pub(crate) fn append(dir: &Path, id: &str) -> Result<()> {
    let path = dir.join(CHANGE_LOG);
    let io_error = |source| Error::io(format!("appending to `{}`", path.display()), source);
    if fs::metadata(&path).is_ok_and(|meta| meta.len() > MAX_LOG_LEN) {
        let fresh = dir.join(".changes-new");
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&fresh)
            .map_err(io_error)?;
        fs::rename(&fresh, &path).map_err(io_error)?;
    }
    let mut options = OpenOptions::new();
    options.append(true).create(true).mode(0o600);
    let mut log = regular_file::open(&path, &mut options, Links::Refuse).map_err(io_error)?;
    let mut line = String::with_capacity(id.len() + 1);
    line.push_str(id);
    line.push('\n');
    log.write_all(line.as_bytes()).map_err(io_error)
}

/// Where a reader of the change log has got to.
pub(crate) struct FileChanges {
    path: PathBuf,
    /// The inode of the log being followed, `None` before the log exists.
    inode: Option<u64>,
    offset: u64,
}

impl FileChanges {
    /// A reader of `dir`'s log that reports changes made from now on.
    pub(crate) fn start(dir: &Path) -> Self {
        let path = dir.join(CHANGE_LOG);
        let (inode, offset) = match fs::metadata(&path) {
            Ok(meta) => (Some(meta.ino()), meta.len()),
            Err(_) => (None, 0),
        };
        Self { path, inode, offset }
    }

    fn read_new(&mut self) -> std::io::Result<Vec<u8>> {
        let mut file =
            regular_file::open(&self.path, OpenOptions::new().read(true), Links::Refuse)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut new = Vec::new();
        file.read_to_end(&mut new)?;
        // Only whole lines: a writer may be in the middle of one.
        let whole = new.iter().rposition(|byte| *byte == b'\n').map_or(0, |at| at + 1);
        new.truncate(whole);
        self.offset += whole as u64;
        Ok(new)
    }
}

impl Poll for FileChanges {
    fn poll(&mut self, listener: &dyn ChangeListener) -> std::result::Result<(), ()> {
        let meta = match fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == ErrorKind::NotFound && self.inode.is_none() => {
                return Ok(());
            }
            Err(_) => return Err(()),
        };
        if self.inode != Some(meta.ino()) || meta.len() < self.offset {
            if self.inode.is_some() {
                listener.lost();
            }
            self.inode = Some(meta.ino());
            self.offset = 0;
        }
        if meta.len() == self.offset {
            return Ok(());
        }
        let new = self.read_new().map_err(drop)?;
        for id in new.split(|byte| *byte == b'\n').filter(|line| !line.is_empty()) {
            if let Ok(id) = std::str::from_utf8(id) {
                listener.changed(id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::change_feed::RecordingListener;

    #[test]
    fn the_log_is_followed_line_by_line_and_a_replaced_log_means_lost_changes() {
        let dir = crate::util::scratch::ScratchDir::new("file-feed");
        let heard = RecordingListener::default();
        let mut changes = FileChanges::start(&dir);
        assert!(changes.poll(&heard).is_ok());
        append(&dir, "default/a").unwrap();
        append(&dir, "default/b").unwrap();
        // A writer in the middle of a line: only whole lines are reported.
        let path = dir.join(CHANGE_LOG);
        let write_raw = |bytes: &[u8]| {
            OpenOptions::new().append(true).open(&path).unwrap().write_all(bytes).unwrap();
        };
        write_raw(b"default/c");
        assert!(changes.poll(&heard).is_ok());
        assert_eq!(heard.take(), (vec!["default/a".to_owned(), "default/b".to_owned()], 0));
        write_raw(b"\n");
        assert!(changes.poll(&heard).is_ok());
        assert_eq!(heard.take(), (vec!["default/c".to_owned()], 0));
        // The log replaced by a fresh one (as when it grows past its limit): the reader cannot
        // know what it missed.
        let fresh = dir.join(".changes-new");
        fs::write(&fresh, b"default/d\n").unwrap();
        fs::rename(&fresh, &path).unwrap();
        assert!(changes.poll(&heard).is_ok());
        assert_eq!(heard.take(), (vec!["default/d".to_owned()], 1));
    }
}
