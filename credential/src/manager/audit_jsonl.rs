//! A tamper-evident audit trail: a JSON Lines file where each line carries the hash of the one
//! before it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::audit::{AuditEvent, AuditQuery, AuditSink};
use crate::{Error, Result, blocking};

/// The `prev` of the first line.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Audit lines are small; the last one is found within this many bytes of the end.
const TAIL_WINDOW: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    prev: String,
    hash: String,
    event: AuditEvent,
}

fn chain_hash(seq: u64, prev: &str, event_json: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(seq.to_be_bytes());
    hasher.update(prev.as_bytes());
    hasher.update(event_json.as_bytes());
    base16ct::lower::encode_string(&hasher.finalize())
}

/// Audit events appended to a JSON Lines file, hash-chained: line `n` stores the SHA-256 of its
/// sequence number, line `n - 1`'s hash and its own event, so editing, deleting, inserting or
/// reordering lines breaks the chain and [`verify`](Self::verify) names the first broken line.
///
/// Appends take an exclusive lock on the file, so several processes can share one trail.
/// Mutation events are flushed to disk (`fsync`) before the mutation proceeds; read events are
/// left to the operating system's buffers. Removing lines from the end is not detectable from the
/// file alone: keep the last hash ([`verify`](Self::verify) returns it) somewhere else to detect
/// that too.
#[derive(Debug, Clone)]
pub struct JsonlAuditSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// Serializes this process's appends; the file lock serializes processes.
    append: Mutex<()>,
}

/// What a successful [`JsonlAuditSink::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainReport {
    /// Lines checked.
    pub lines: u64,
    /// The hash of the last line ("000…" for an empty trail).
    pub last_hash: String,
}

impl JsonlAuditSink {
    /// Opens (creating with mode 0600 if needed) the trail at `path`.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        open_for_append(&path)?;
        Ok(Self { inner: Arc::new(Inner { path, append: Mutex::new(()) }) })
    }

    /// The trail's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Checks the whole chain.
    ///
    /// # Errors
    /// [`Error::AuditTampered`] naming the first line that was edited, inserted, moved or
    /// follows a deleted line; [`Error::Io`].
    pub async fn verify(&self) -> Result<ChainReport> {
        let path = self.inner.path.clone();
        blocking::run(move || verify_file(&path)).await
    }
}

fn io_error(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{context} `{}`", path.display());
    move |source| Error::Io { context, source }
}

fn open_for_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .read(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("opening audit trail", path))
}

/// The sequence number and hash of the last line, read from the end of the file.
fn last_link(file: &mut File, path: &Path) -> Result<(u64, String)> {
    let len = file.metadata().map_err(io_error("reading", path))?.len();
    if len == 0 {
        return Ok((0, GENESIS.to_owned()));
    }
    let start = len.saturating_sub(TAIL_WINDOW);
    file.seek(SeekFrom::Start(start)).map_err(io_error("reading", path))?;
    let mut tail = String::new();
    file.read_to_string(&mut tail).map_err(io_error("reading", path))?;
    let last = tail.trim_end_matches('\n').rsplit('\n').next().unwrap_or_default();
    let line: Line = serde_json::from_str(last).map_err(|_| Error::AuditTampered {
        line: None,
        reason: "the last line is not an audit record".to_owned(),
    })?;
    Ok((line.seq, line.hash))
}

fn append(inner: &Inner, event: &AuditEvent, durable: bool) -> Result<()> {
    let _local = inner.append.lock().unwrap_or_else(PoisonError::into_inner);
    let path = &inner.path;
    let mut file = open_for_append(path)?;
    file.lock().map_err(io_error("locking", path))?;
    let (seq, prev) = last_link(&mut file, path)?;
    let event_json =
        serde_json::to_string(event).map_err(|error| Error::Audit { reason: error.to_string() })?;
    let seq = seq + 1;
    let hash = chain_hash(seq, &prev, &event_json);
    let line = Line { seq, prev, hash, event: event.clone() };
    let mut text =
        serde_json::to_string(&line).map_err(|error| Error::Audit { reason: error.to_string() })?;
    text.push('\n');
    file.write_all(text.as_bytes()).map_err(io_error("appending to", path))?;
    if durable {
        file.sync_data().map_err(io_error("flushing", path))?;
    }
    Ok(())
}

fn read_events(path: &Path) -> Result<Vec<AuditEvent>> {
    let file = File::open(path).map_err(io_error("reading", path))?;
    let mut events = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_error("reading", path))?;
        let parsed: Line = serde_json::from_str(&line).map_err(|_| Error::AuditTampered {
            line: Some(index as u64 + 1),
            reason: "not an audit record".to_owned(),
        })?;
        events.push(parsed.event);
    }
    Ok(events)
}

fn verify_file(path: &Path) -> Result<ChainReport> {
    let file = File::open(path).map_err(io_error("reading", path))?;
    let mut prev = GENESIS.to_owned();
    let mut lines = 0;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index as u64 + 1;
        let tampered =
            |reason: &str| Error::AuditTampered { line: Some(number), reason: reason.to_owned() };
        let line = line.map_err(io_error("reading", path))?;
        let parsed: Line =
            serde_json::from_str(&line).map_err(|_| tampered("not an audit record"))?;
        if parsed.seq != number {
            return Err(tampered(
                "out of sequence: a line was inserted, deleted or moved before it",
            ));
        }
        if parsed.prev != prev {
            return Err(tampered(
                "does not follow the line before it: a line was inserted, deleted or moved",
            ));
        }
        let event_json =
            serde_json::to_string(&parsed.event).map_err(|_| tampered("not an audit record"))?;
        if chain_hash(parsed.seq, &parsed.prev, &event_json) != parsed.hash {
            return Err(tampered("its content was changed"));
        }
        prev = parsed.hash;
        lines = number;
    }
    Ok(ChainReport { lines, last_hash: prev })
}

#[async_trait]
impl AuditSink for JsonlAuditSink {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        blocking::run(move || append(&inner, &event, event.action.is_mutation())).await
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let (path, query) = (self.inner.path.clone(), query.clone());
        blocking::run(move || Ok(query.apply(read_events(&path)?.iter()))).await
    }
}
