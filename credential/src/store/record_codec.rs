//! The byte form of a [`Record`] for backends that store records whole (files).
//!
//! ```text
//! 4 bytes  magic "CRDR"
//! u8       format version (1)
//! then, in the storage encoding's primitives: id, kind, environment, state (text), revision
//! (varint), created_at, updated_at, expires_at (option), tags (list of text), key id (text),
//! versions (count, then per version: number, state, created_at, changed_at, sealed bytes)
//! ```

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::record::{Record, RecordMeta, SealedVersion};
use crate::encoding::{self, Reader, Writer};
use crate::{DecodeError, Error, FieldCodec, Result};

const MAGIC: &[u8; 4] = b"CRDR";
const VERSION: u8 = 1;

pub(crate) fn encode(record: &Record) -> Vec<u8> {
    encoding::write_exact(|writer| write_record(writer, record)).to_vec()
}

fn write_record(writer: &mut Writer, record: &Record) {
    let meta = &record.meta;
    writer.bytes(MAGIC);
    writer.u8(VERSION);
    meta.id.encode(writer);
    meta.kind.encode(writer);
    meta.environment.encode(writer);
    writer.len_prefixed(meta.state.as_str().as_bytes());
    writer.varint(meta.revision);
    meta.created_at.encode(writer);
    meta.updated_at.encode(writer);
    meta.expires_at.encode(writer);
    writer.varint(meta.tags.len() as u64);
    for tag in &meta.tags {
        tag.encode(writer);
    }
    meta.key_id.encode(writer);
    writer.varint(record.versions.len() as u64);
    for version in &record.versions {
        writer.varint(version.version);
        writer.len_prefixed(version.state.as_str().as_bytes());
        version.created_at.encode(writer);
        version.changed_at.encode(writer);
        writer.len_prefixed(&version.sealed);
    }
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Record> {
    let corrupt = |error: DecodeError| Error::CorruptRecord { reason: error.to_string() };
    let mut reader = Reader::new(bytes);
    if reader.bytes(4).map_err(corrupt)? != MAGIC {
        return Err(Error::CorruptRecord { reason: "not a credential record".to_owned() });
    }
    let version = reader.u8().map_err(corrupt)?;
    if version != VERSION {
        return Err(Error::CorruptRecord {
            reason: format!(
                "record format version {version} is not supported (this build reads {VERSION})"
            ),
        });
    }
    let record = read_record(&mut reader).map_err(corrupt)?;
    if !reader.is_empty() {
        return Err(Error::CorruptRecord { reason: "trailing bytes after the record".to_owned() });
    }
    Ok(record)
}

/// Decodes the record a backend stored under `id`, checking that it is that record's.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn decode_stored(id: &str, bytes: &[u8]) -> Result<Record> {
    let record = decode(bytes).map_err(|error| match error {
        Error::CorruptRecord { reason } => {
            Error::CorruptRecord { reason: format!("row `{id}`: {reason}") }
        }
        other => other,
    })?;
    if record.meta.id != id {
        return Err(Error::CorruptRecord {
            reason: format!("row `{id}` holds another record's data"),
        });
    }
    Ok(record)
}

fn read_record(reader: &mut Reader<'_>) -> std::result::Result<Record, DecodeError> {
    let id = String::decode(reader)?;
    let kind = String::decode(reader)?;
    let environment = String::decode(reader)?;
    let state = parse_state(reader.str()?)?;
    let revision = reader.varint()?;
    let created_at = DateTime::<Utc>::decode(reader)?;
    let updated_at = DateTime::<Utc>::decode(reader)?;
    let expires_at = Option::<DateTime<Utc>>::decode(reader)?;
    let tag_count = reader.count()?;
    let mut tags = BTreeSet::new();
    for _ in 0..tag_count {
        tags.insert(String::decode(reader)?);
    }
    let key_id = String::decode(reader)?;
    let version_count = reader.count()?;
    let mut versions = Vec::with_capacity(version_count);
    for _ in 0..version_count {
        versions.push(SealedVersion {
            version: reader.varint()?,
            state: parse_state(reader.str()?)?,
            created_at: DateTime::<Utc>::decode(reader)?,
            changed_at: DateTime::<Utc>::decode(reader)?,
            sealed: reader.len_prefixed()?.to_vec(),
        });
    }
    Ok(Record {
        meta: RecordMeta {
            id,
            kind,
            environment,
            state,
            revision,
            created_at,
            updated_at,
            expires_at,
            tags,
            key_id,
        },
        versions,
    })
}

fn parse_state<T: std::str::FromStr>(text: &str) -> std::result::Result<T, DecodeError> {
    text.parse().map_err(|_| DecodeError::invalid("unknown state name"))
}
