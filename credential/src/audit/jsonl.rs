//! A tamper-evident audit trail: a JSON Lines file where each line carries the hash of the one
//! before it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::queue::{AuditQueue, BatchTarget, DEFAULT_QUEUE_CAPACITY};
use super::{Anchors, AuditEvent, AuditQuery, AuditSink, TrailAnchor, Unwritten};
use crate::store::{ListFilter, Store};
use crate::util::regular_file::{self, Links};
use crate::{Error, Result, blocking};

/// The `prev` of the first line.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// How much of the file's end is read at a time while looking for the last line.
const TAIL_CHUNK: u64 = 8 * 1024;

/// What a line says besides its event; the event itself is hashed as the bytes stored.
#[derive(Deserialize)]
struct Link {
    seq: u64,
    prev: String,
    hash: String,
}

#[derive(Deserialize)]
struct Line {
    event: AuditEvent,
}

fn chain_hash(seq: u64, prev: &str, event_json: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(seq.to_be_bytes());
    hasher.update(prev.as_bytes());
    hasher.update(event_json);
    base16ct::lower::encode_string(&hasher.finalize())
}

/// Appends everything a line holds before its event's bytes to `out`.
fn write_line_prefix(out: &mut Vec<u8>, seq: u64, prev: &str, hash: &str) {
    out.extend_from_slice(br#"{"seq":"#);
    // Writing to a `Vec` cannot fail.
    let _ = write!(out, "{seq}");
    out.extend_from_slice(br#","prev":""#);
    out.extend_from_slice(prev.as_bytes());
    out.extend_from_slice(br#"","hash":""#);
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(br#"","event":"#);
}

/// Audit events appended to a JSON Lines file, hash-chained: line `n` stores the SHA-256 of its
/// sequence number, line `n - 1`'s hash and its event's bytes exactly as stored, so editing,
/// deleting, inserting or reordering lines breaks the chain and [`verify`](Self::verify) names the
/// first broken line.
///
/// Appends take an exclusive lock on the file, so several processes can share one trail. Events
/// are written by a background writer in batches (group commit, one `fsync` per batch): a
/// mutation's event is durable before the mutation proceeds; a read's event is durable with the
/// next batch, milliseconds later. A crash can lose the read events still queued, never a
/// mutation's. A line left half-written by a crash is cut off before the next append.
///
/// Removing lines from the end leaves a valid chain, so the file alone cannot show it. A manager
/// therefore names, in every record it writes, the last line of its trail that was durable then
/// ([`TrailAnchor`]); [`verify_against_store`](Self::verify_against_store) checks that the trail
/// still reaches the furthest line the store names, with the same hash. Read events written after
/// a store's last change are not anchored.
#[derive(Debug, Clone)]
pub struct JsonlAuditSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    queue: AuditQueue,
    /// The last line written, once the writer has written a batch.
    anchor: Arc<Mutex<Option<TrailAnchor>>>,
}

/// What a successful [`JsonlAuditSink::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainReport {
    /// Lines checked.
    pub lines: u64,
    /// The hash of the last line ("000…" for an empty trail).
    pub last_hash: String,
    /// The furthest line the store's records name, checked, like every line they name, to be
    /// there with the hash they name ([`JsonlAuditSink::verify_against_store`]); `None` when no record names this trail, or
    /// when the trail was verified alone.
    pub anchored_line: Option<u64>,
    /// How many other trails the store's records name: trails of managers that audit elsewhere,
    /// or this trail before its first line was replaced or cut away (an empty trail's records
    /// name only other trails). Zero when the trail was verified alone.
    pub other_trails: usize,
}

impl JsonlAuditSink {
    /// Opens (creating with mode 0600 if needed) the trail at `path`.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        open_for_append(&path)?;
        let anchor = Arc::new(Mutex::new(None));
        let queue = AuditQueue::start(
            "credential-audit-jsonl",
            JsonlTarget { path: path.clone(), anchor: Arc::clone(&anchor) },
            DEFAULT_QUEUE_CAPACITY,
        )?;
        Ok(Self { inner: Arc::new(Inner { path, queue, anchor }) })
    }

    /// The trail's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Checks the whole chain (after writing out every queued event).
    ///
    /// # Errors
    /// [`Error::AuditTampered`] naming the first line that was edited, inserted, moved or
    /// follows a deleted line; [`Error::Io`].
    pub async fn verify(&self) -> Result<ChainReport> {
        self.verify_anchored(Anchors::default()).await
    }

    /// Checks the whole chain as [`verify`](Self::verify) does, and that every line of this trail
    /// that `store`'s records name (in any environment) is there with the hash they name: a
    /// trail whose end was cut off, or that was rewritten from some line on, fails.
    ///
    /// # Errors
    /// As [`verify`](Self::verify); [`Error::AuditTampered`] when the trail ends before the line
    /// the store names or holds another line there; the store's error.
    pub async fn verify_against_store<S: Store + ?Sized>(&self, store: &S) -> Result<ChainReport> {
        let records = store.list(&ListFilter::all()).await?;
        self.verify_anchored(Anchors::of(&records)).await
    }

    async fn verify_anchored(&self, anchors: Anchors) -> Result<ChainReport> {
        self.inner.queue.flush().await?;
        let path = self.inner.path.clone();
        blocking::run(move || verify_file(&path, &anchors)).await
    }
}

fn io_error(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{context} `{}`", path.display());
    move |source| Error::io(context, source)
}

/// Opens the trail to append to it: a FIFO, socket, device or link in its place is an error at
/// once, never a hang (see `util::regular_file`).
fn open_for_append(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).read(true).create(true).mode(0o600);
    regular_file::open(path, &mut options, Links::Refuse)
        .map_err(io_error("opening audit trail", path))
}

/// Opens the trail to read it, as [`open_for_append`] does.
fn open_for_reading(path: &Path) -> Result<File> {
    regular_file::open(path, OpenOptions::new().read(true), Links::Refuse)
        .map_err(io_error("reading", path))
}

/// The byte offset where the file's last line starts, and where its complete lines end (a tail
/// without a newline is a line a crash left half-written). Reads backwards, however long the line.
fn last_line_bounds(file: &mut File, len: u64, path: &Path) -> Result<(u64, u64)> {
    let mut newlines = Vec::new();
    let mut end = len;
    let mut buf = vec![0u8; TAIL_CHUNK as usize];
    // The last two newlines bound the last complete line.
    while end > 0 && newlines.len() < 2 {
        let start = end.saturating_sub(TAIL_CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).map_err(io_error("reading", path))?;
        file.read_exact(chunk).map_err(io_error("reading", path))?;
        for (at, byte) in chunk.iter().enumerate().rev() {
            if *byte == b'\n' {
                newlines.push(start + at as u64);
                if newlines.len() == 2 {
                    break;
                }
            }
        }
        end = start;
    }
    match newlines.as_slice() {
        [] => Ok((0, 0)),
        [last] => Ok((0, last + 1)),
        [last, before, ..] => Ok((before + 1, last + 1)),
    }
}

/// The sequence number and hash of the last complete line, cutting off a half-written tail.
fn last_link(file: &mut File, path: &Path) -> Result<(u64, String)> {
    let len = file.metadata().map_err(io_error("reading", path))?.len();
    let (start, complete) = last_line_bounds(file, len, path)?;
    if complete < len {
        file.set_len(complete).map_err(io_error("cutting a half-written line from", path))?;
    }
    if complete == 0 {
        return Ok((0, GENESIS.to_owned()));
    }
    let mut line = vec![0u8; (complete - start) as usize];
    file.seek(SeekFrom::Start(start)).map_err(io_error("reading", path))?;
    file.read_exact(&mut line).map_err(io_error("reading", path))?;
    let link: Link = serde_json::from_slice(&line).map_err(|_| Error::AuditTampered {
        line: None,
        reason: "the last line is not an audit record".to_owned(),
    })?;
    Ok((link.seq, link.hash))
}

/// The hash of the file's first line, when it has one.
fn first_hash(file: &mut File, path: &Path) -> Result<Option<String>> {
    file.seek(SeekFrom::Start(0)).map_err(io_error("reading", path))?;
    let mut line = Vec::new();
    BufReader::new(&*file).read_until(b'\n', &mut line).map_err(io_error("reading", path))?;
    if line.is_empty() {
        return Ok(None);
    }
    let link: Link = serde_json::from_slice(&line).map_err(|_| Error::AuditTampered {
        line: Some(1),
        reason: "not an audit record".to_owned(),
    })?;
    Ok(Some(link.hash))
}

/// Appends batches to the file, all or nothing, and keeps the last line written as the trail's
/// anchor.
struct JsonlTarget {
    path: PathBuf,
    anchor: Arc<Mutex<Option<TrailAnchor>>>,
}

impl BatchTarget for JsonlTarget {
    fn write(&mut self, events: &[AuditEvent]) -> Result<()> {
        let path = &self.path;
        let mut file = open_for_append(path)?;
        file.lock().map_err(io_error("locking", path))?;
        let (mut seq, mut prev) = last_link(&mut file, path)?;
        // One buffer for the batch and one for each event's bytes in turn: a busy trail writes
        // thousands of lines a batch.
        let mut text = Vec::with_capacity(events.len() * 384);
        let mut event_json = Vec::with_capacity(256);
        for event in events {
            event_json.clear();
            serde_json::to_writer(&mut event_json, event).map_err(Error::audit_caused_by)?;
            seq += 1;
            let hash = chain_hash(seq, &prev, &event_json);
            write_line_prefix(&mut text, seq, &prev, &hash);
            text.extend_from_slice(&event_json);
            text.extend_from_slice(b"}\n");
            prev = hash;
        }
        let before = file.metadata().map_err(io_error("reading", path))?.len();
        let written = file
            .write_all(&text)
            .and_then(|()| file.sync_data())
            .map_err(io_error("appending to", path));
        if written.is_err() {
            // All or nothing: a partial batch would be retried and written twice.
            let _ = file.set_len(before);
        }
        written?;
        // Read back rather than remembered: another process may have started the file.
        if let Some(trail) = first_hash(&mut file, path)? {
            let anchor = TrailAnchor { trail, line: seq, hash: prev };
            *self.anchor.lock().unwrap_or_else(PoisonError::into_inner) = Some(anchor);
        }
        Ok(())
    }
}

fn read_events(path: &Path) -> Result<Vec<AuditEvent>> {
    let file = open_for_reading(path)?;
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

fn verify_file(path: &Path, anchors: &Anchors) -> Result<ChainReport> {
    let file = open_for_reading(path)?;
    let mut prev = GENESIS.to_owned();
    let mut lines = 0;
    let mut prefix = Vec::new();
    // The trail's name (its first line's hash), and the lines the store names of it.
    let mut trail = None;
    let mut anchored = None;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index as u64 + 1;
        let tampered =
            |reason: &str| Error::AuditTampered { line: Some(number), reason: reason.to_owned() };
        let line = line.map_err(io_error("reading", path))?;
        let link: Link =
            serde_json::from_str(&line).map_err(|_| tampered("not an audit record"))?;
        serde_json::from_str::<Line>(&line).map_err(|_| tampered("not an audit record"))?;
        if link.seq != number {
            return Err(tampered(
                "out of sequence: a line was inserted, deleted or moved before it",
            ));
        }
        if link.prev != prev {
            return Err(tampered(
                "does not follow the line before it: a line was inserted, deleted or moved",
            ));
        }
        prefix.clear();
        write_line_prefix(&mut prefix, link.seq, &link.prev, &link.hash);
        let event_json = line
            .as_bytes()
            .strip_prefix(prefix.as_slice())
            .and_then(|rest| rest.strip_suffix(b"}"))
            .ok_or_else(|| tampered("not laid out as an audit record"))?;
        if chain_hash(link.seq, &link.prev, event_json) != link.hash {
            return Err(tampered("its content was changed"));
        }
        if number == 1 {
            anchored = anchors.of_trail(&link.hash);
            trail = Some(link.hash.clone());
        }
        let named = anchored.and_then(|lines| lines.get(&number));
        if named.is_some_and(|hashes| hashes.iter().any(|hash| *hash != link.hash)) {
            return Err(tampered(
                "is not the line the store's records name: the trail was rewritten from here on",
            ));
        }
        prev = link.hash;
        lines = number;
    }
    let furthest = anchored.and_then(|lines| lines.keys().next_back().copied());
    if let Some(furthest) = furthest.filter(|furthest| *furthest > lines) {
        return Err(Error::AuditTampered {
            line: None,
            reason: format!(
                "the trail ends at line {lines}, but the store's records name line {furthest}: \
                 its last lines were cut off"
            ),
        });
    }
    Ok(ChainReport {
        lines,
        last_hash: prev,
        anchored_line: furthest,
        other_trails: anchors.other_trails(trail.as_deref()),
    })
}

#[async_trait]
impl AuditSink for JsonlAuditSink {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        self.inner.queue.record_durably(event).await
    }

    fn record_read(&self, event: AuditEvent) -> Result<()> {
        self.inner.queue.enqueue(event)
    }

    async fn flush(&self) -> Result<()> {
        self.inner.queue.flush().await
    }

    async fn close(&self) -> std::result::Result<(), Unwritten> {
        self.inner.queue.close().await
    }

    fn trail_anchor(&self) -> Option<TrailAnchor> {
        self.inner.anchor.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        self.inner.queue.flush().await?;
        let (path, query) = (self.inner.path.clone(), query.clone());
        blocking::run(move || Ok(query.apply(read_events(&path)?.iter()))).await
    }
}
