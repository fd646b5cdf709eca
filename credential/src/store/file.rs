//! A directory of record files: one file per record, atomic replacement, a cross-process lock.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::file_feed::{self, FileChanges};
use super::file_keys::{KEYS_FILE, KeyCounts};
use super::key_usage::{Usage, usage};
use super::memory::apply_put;
use super::{
    ChangeFeed, ChangeListener, ListFilter, LocalListeners, Precondition, Record, RecordMeta,
    Store, check_id, record_codec, spawn_poller,
};
use crate::util::regular_file::{self, Links};
use crate::{Error, Result, blocking};

const RECORD_SUFFIX: &str = ".rec";
const TEMP_PREFIX: &str = ".tmp-";
const LOCK_FILE: &str = ".lock";
/// The largest record or `.keys` file read: far above any record the store writes, so a file
/// grown by someone else is an error rather than an allocation of its size.
const MAX_FILE_LEN: u64 = 64 << 20;

/// Records as files in one directory.
///
/// - A write goes to a temporary file, is flushed with `fsync`, renamed over the record and the
///   directory is flushed: a crash leaves the old record or the new one, never a mix. Leftover
///   temporary files of a crashed write are ignored and removed on the next open.
/// - The directory is created `0700` and files `0600` from the start (no window for a `chmod`
///   race); an existing directory that its group or others may access is refused.
/// - Read-modify-write runs under an exclusive lock on `.lock`, so several processes can share
///   the directory.
/// - Ids pass [`check_id`]; `/` in an id is stored as `~` in the file name.
/// - Record, `.keys`, `.lock` and `.changes` files are opened without following links and
///   without blocking, and checked on the opened descriptor: a FIFO, socket, device or link in
///   their place is an error at once, never a hang.
/// - Every write appends the record's id to a change log (`.changes`) before and after replacing
///   the record; the store's change feed follows the log, so a manager learns of writes made by
///   other processes within milliseconds. A write whose first entry cannot be logged does not
///   happen.
/// - `.keys` counts the master keys the live records use, rewritten under the lock before a
///   write that changes a count, with the change in progress noted (a crash between the two is
///   settled from the record), so a manager checks its key ring without reading the records.
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    temp_counter: AtomicU64,
    listeners: LocalListeners,
}

impl FileStore {
    /// Opens (creating if needed) the store in directory `dir`.
    ///
    /// # Errors
    /// [`Error::InsecurePermissions`] for a directory open to group or others, [`Error::Io`].
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        blocking::run(move || {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_error("creating store directory", &dir))?;
            // Checked on the opened directory: a FIFO or a file in its place fails at once.
            let opened = regular_file::open_dir(&dir).map_err(io_error("opening", &dir))?;
            let mode =
                opened.metadata().map_err(io_error("reading", &dir))?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(Error::InsecurePermissions { path: dir, mode });
            }
            let store = Self {
                inner: Arc::new(Inner {
                    dir,
                    temp_counter: AtomicU64::new(0),
                    listeners: LocalListeners::default(),
                }),
            };
            let _lock = store.inner.lock()?;
            store.inner.remove_leftovers()?;
            if store.inner.key_counts().is_none() {
                // A new directory, or one from before the counts were kept: count once.
                let counts = KeyCounts::of(&store.inner.list(&ListFilter::all())?);
                let path = store.inner.dir.join(KEYS_FILE);
                store.inner.replace(&path, "keys", &counts.to_bytes()?)?;
            }
            Ok(store)
        })
        .await
    }

    /// The directory the records live in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

impl Inner {
    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{}{RECORD_SUFFIX}", id.replace('/', "~")))
    }

    fn lock(&self) -> Result<File> {
        let path = self.dir.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false).mode(0o600);
        let file = regular_file::open(&path, &mut options, Links::Refuse)
            .map_err(io_error("opening lock file", &path))?;
        file.lock().map_err(io_error("locking", &path))?;
        Ok(file)
    }

    fn read(&self, id: &str) -> Result<Option<Record>> {
        self.read_as(id, record_codec::decode, |record| &record.meta)
    }

    /// The metadata of record `id` alone, for listing.
    fn read_meta(&self, id: &str) -> Result<Option<RecordMeta>> {
        self.read_as(id, record_codec::decode_meta, |meta| meta)
    }

    /// The file of record `id` through `decode`, checked to be that record's.
    fn read_as<T>(
        &self,
        id: &str,
        decode: fn(&[u8]) -> Result<T>,
        meta: fn(&T) -> &RecordMeta,
    ) -> Result<Option<T>> {
        let path = self.record_path(id);
        let bytes = match regular_file::read(&path, Links::Refuse, MAX_FILE_LEN) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("reading record", &path)(error)),
        };
        let decoded = decode(&bytes).map_err(|error| in_file(error, &path))?;
        if meta(&decoded).id != id {
            return Err(Error::CorruptRecord {
                reason: format!("file `{}` holds another record's data", path.display()),
            });
        }
        Ok(Some(decoded))
    }

    fn write(&self, record: &Record) -> Result<()> {
        let stem = record.meta.id.replace('/', "~");
        self.replace(&self.record_path(&record.meta.id), &stem, &record_codec::encode(record))
    }

    /// Replaces the file at `path` with `bytes`: a temporary file named after `stem`, flushed,
    /// renamed over it, and the directory flushed.
    fn replace(&self, path: &Path, stem: &str, bytes: &[u8]) -> Result<()> {
        let temp = self.dir.join(format!(
            "{TEMP_PREFIX}{stem}-{}-{}",
            std::process::id(),
            self.temp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
                .map_err(io_error("creating", &temp))?;
            file.write_all(bytes).map_err(io_error("writing", &temp))?;
            file.sync_all().map_err(io_error("flushing", &temp))?;
            fs::rename(&temp, path).map_err(io_error("replacing", path))?;
            self.sync_dir()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// The key counts as kept, settled against the record a crash may have left pending; `None`
    /// when there are none or they cannot be trusted.
    fn key_counts(&self) -> Option<KeyCounts> {
        let bytes =
            regular_file::read(&self.dir.join(KEYS_FILE), Links::Refuse, MAX_FILE_LEN).ok()?;
        KeyCounts::settled(&bytes, |id| self.read_meta(id)).ok()
    }

    /// Under the lock: notes that record `id` moves from counting for `before` to `after`,
    /// before the record is replaced. Counts that are missing or cannot be trusted are counted
    /// again from the records first.
    fn note_key_change(&self, id: &str, before: Usage, after: Usage) -> Result<()> {
        if before == after {
            return Ok(());
        }
        let counts = match self.key_counts() {
            Some(counts) => counts,
            None => KeyCounts::of(&self.list(&ListFilter::all())?),
        };
        let path = self.dir.join(KEYS_FILE);
        self.replace(&path, "keys", &counts.with_pending(id, before, after)?)
    }

    fn sync_dir(&self) -> Result<()> {
        regular_file::open_dir(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("flushing directory", &self.dir))
    }

    fn remove_leftovers(&self) -> Result<()> {
        for entry in fs::read_dir(&self.dir).map_err(io_error("listing", &self.dir))? {
            let entry = entry.map_err(io_error("listing", &self.dir))?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                fs::remove_file(entry.path())
                    .map_err(io_error("removing leftover", &entry.path()))?;
            }
        }
        Ok(())
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let mut metas = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error("listing", &self.dir))? {
            let entry = entry.map_err(io_error("listing", &self.dir))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|name| name.strip_suffix(RECORD_SUFFIX)) else {
                continue;
            };
            if stem.starts_with('.') {
                continue;
            }
            let id = stem.replace('~', "/");
            if check_id(&id).is_err() {
                continue;
            }
            if let Some(meta) = self.read_meta(&id)?
                && filter.matches(&meta)
            {
                metas.push(meta);
            }
        }
        metas.sort_by(|left, right| left.id.cmp(&right.id));
        Ok(metas)
    }
}

fn io_error<'a>(action: &'a str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::io(format!("{action} `{}`", path.display()), source)
}

fn in_file(error: Error, path: &Path) -> Error {
    match error {
        Error::CorruptRecord { reason } => {
            Error::CorruptRecord { reason: format!("file `{}`: {reason}", path.display()) }
        }
        other => other,
    }
}

#[async_trait]
impl Store for FileStore {
    async fn get(&self, id: &str) -> Result<Option<Record>> {
        check_id(id)?;
        let (inner, id) = (Arc::clone(&self.inner), id.to_owned());
        blocking::run(move || inner.read(&id)).await
    }

    async fn put(&self, record: Record, precondition: Precondition) -> Result<u64> {
        check_id(&record.meta.id)?;
        let inner = Arc::clone(&self.inner);
        blocking::run(move || {
            let _lock = inner.lock()?;
            let current = inner.read(&record.meta.id)?;
            let record = apply_put(current.as_ref(), record, precondition)?;
            let before = usage(current.as_ref().map(|current| &current.meta));
            inner.note_key_change(&record.meta.id, before, usage(Some(&record.meta)))?;
            // Logged before the replacement, so a write no other process could hear of never
            // happens; and after it, so a reader that reloads on the entry sees the new record.
            file_feed::append(&inner.dir, &record.meta.id)?;
            inner.write(&record)?;
            let _ = file_feed::append(&inner.dir, &record.meta.id);
            inner.listeners.report(&record.meta.id);
            Ok(record.meta.revision)
        })
        .await
    }

    async fn delete(&self, id: &str, revision: u64) -> Result<()> {
        check_id(id)?;
        let (inner, id) = (Arc::clone(&self.inner), id.to_owned());
        blocking::run(move || {
            let _lock = inner.lock()?;
            match inner.read(&id)? {
                Some(found) if found.meta.revision == revision => {
                    inner.note_key_change(&id, usage(Some(&found.meta)), None)?;
                    let path = inner.record_path(&id);
                    file_feed::append(&inner.dir, &id)?;
                    fs::remove_file(&path).map_err(io_error("removing", &path))?;
                    inner.sync_dir()?;
                    let _ = file_feed::append(&inner.dir, &id);
                    inner.listeners.report(&id);
                    Ok(())
                }
                _ => Err(Error::Conflict { id }),
            }
        })
        .await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<RecordMeta>> {
        let (inner, filter) = (Arc::clone(&self.inner), filter.clone());
        blocking::run(move || inner.list(&filter)).await
    }

    /// Kept in `.keys` by every write that changes them.
    async fn key_ids_in_use(
        &self,
        environment: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>> {
        let (inner, environment) = (Arc::clone(&self.inner), environment.to_owned());
        blocking::run(move || Ok(inner.key_counts().map(|counts| counts.key_ids_in(&environment))))
            .await
    }

    /// A polled feed over the directory's change log: sees the writes of every process sharing
    /// the directory.
    fn watch(&self, listener: Arc<dyn ChangeListener>) -> Result<Option<ChangeFeed>> {
        let changes = FileChanges::start(&self.inner.dir);
        spawn_poller("credential-file-feed", changes, listener, &self.inner.listeners)
            .map(Some)
            .map_err(|source| Error::io("starting the change feed", source))
    }
}
