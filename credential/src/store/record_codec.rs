//! The byte form of a [`Record`] for backends that store records whole (files).
//!
//! ```text
//! 4 bytes  magic "CRDR"
//! u8       format version (4; 1 to 3 are still read)
//! then, in the storage encoding's primitives: id, kind, environment, state (text), revision
//! (varint), created_at, updated_at, expires_at (option), tags (list of text), key id (text),
//! refresh mark (from version 2), record tag (bytes, from version 3), trail anchor (option of
//! trail text, line varint, hash text; from version 4), versions (count, then per version:
//! number, state, created_at, changed_at, sealed bytes)
//! ```

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::record::{Record, RecordMeta, RefreshLease, RefreshMark, SealedVersion};
use crate::audit::TrailAnchor;
use crate::encoding::{self, Reader, Writer};
use crate::field::{DecodeError, FieldCodec};
use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"CRDR";
const VERSION: u8 = 4;
/// The format before the trail anchor; still read (its records name no anchor).
const VERSION_WITHOUT_ANCHOR: u8 = 3;
/// The format before the record tag; still read (its records are untagged).
const VERSION_WITHOUT_TAG: u8 = 2;
/// The format before the refresh mark; still read.
const VERSION_WITHOUT_REFRESH: u8 = 1;

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
    match &meta.refresh.lease {
        None => writer.u8(0),
        Some(lease) => {
            writer.u8(1);
            lease.holder.encode(writer);
            lease.until.encode(writer);
        }
    }
    meta.refresh.reauth_required.encode(writer);
    writer.len_prefixed(&meta.tag);
    match &meta.trail {
        None => writer.u8(0),
        Some(anchor) => {
            writer.u8(1);
            anchor.trail.encode(writer);
            writer.varint(anchor.line);
            anchor.hash.encode(writer);
        }
    }
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
    let (mut reader, version) = open(bytes)?;
    let meta = read_meta(&mut reader, version).map_err(corrupt)?;
    let versions = read_versions(&mut reader).map_err(corrupt)?;
    if !reader.is_empty() {
        return Err(Error::CorruptRecord { reason: "trailing bytes after the record".to_owned() });
    }
    Ok(Record { meta, versions })
}

/// The metadata alone, for listing: the sealed versions after it are neither decoded nor copied.
pub(crate) fn decode_meta(bytes: &[u8]) -> Result<RecordMeta> {
    let (mut reader, version) = open(bytes)?;
    read_meta(&mut reader, version).map_err(corrupt)
}

/// A reader past the header and the format version, once the header says this is a record this
/// build reads.
fn open(bytes: &[u8]) -> Result<(Reader<'_>, u8)> {
    let mut reader = Reader::new(bytes);
    if reader.bytes(4).map_err(corrupt)? != MAGIC {
        return Err(Error::CorruptRecord { reason: "not a credential record".to_owned() });
    }
    let version = reader.u8().map_err(corrupt)?;
    if !matches!(
        version,
        VERSION | VERSION_WITHOUT_ANCHOR | VERSION_WITHOUT_TAG | VERSION_WITHOUT_REFRESH
    ) {
        return Err(Error::CorruptRecord {
            reason: format!(
                "record format version {version} is not supported (this build reads {VERSION})"
            ),
        });
    }
    Ok((reader, version))
}

fn corrupt(error: DecodeError) -> Error {
    Error::CorruptRecord { reason: error.to_string() }
}

/// Decodes the record a backend stored under `id`, checking that it is that record's.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "vault"))]
pub(crate) fn decode_stored(id: &str, bytes: &[u8]) -> Result<Record> {
    let record = decode(bytes).map_err(|error| in_row(id, error))?;
    check_stored(id, &record.meta)?;
    Ok(record)
}

/// [`decode_stored`]'s metadata alone, for listing.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "vault"))]
pub(crate) fn decode_stored_meta(id: &str, bytes: &[u8]) -> Result<RecordMeta> {
    let meta = decode_meta(bytes).map_err(|error| in_row(id, error))?;
    check_stored(id, &meta)?;
    Ok(meta)
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "vault"))]
fn in_row(id: &str, error: Error) -> Error {
    match error {
        Error::CorruptRecord { reason } => {
            Error::CorruptRecord { reason: format!("row `{id}`: {reason}") }
        }
        other => other,
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "vault"))]
fn check_stored(id: &str, meta: &RecordMeta) -> Result<()> {
    if meta.id == id {
        Ok(())
    } else {
        Err(Error::CorruptRecord { reason: format!("row `{id}` holds another record's data") })
    }
}

fn read_meta(reader: &mut Reader<'_>, version: u8) -> std::result::Result<RecordMeta, DecodeError> {
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
    let refresh = if version == VERSION_WITHOUT_REFRESH {
        RefreshMark::default()
    } else {
        read_refresh(reader)?
    };
    let tag = if version >= VERSION_WITHOUT_ANCHOR {
        reader.len_prefixed()?.to_vec()
    } else {
        Vec::new()
    };
    let trail = if version >= VERSION { read_anchor(reader)? } else { None };
    Ok(RecordMeta {
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
        refresh,
        tag,
        trail,
    })
}

fn read_anchor(reader: &mut Reader<'_>) -> std::result::Result<Option<TrailAnchor>, DecodeError> {
    match reader.u8()? {
        0 => Ok(None),
        1 => Ok(Some(TrailAnchor {
            trail: String::decode(reader)?,
            line: reader.varint()?,
            hash: String::decode(reader)?,
        })),
        _ => Err(DecodeError::invalid("invalid trail anchor tag")),
    }
}

fn read_refresh(reader: &mut Reader<'_>) -> std::result::Result<RefreshMark, DecodeError> {
    let lease = match reader.u8()? {
        0 => None,
        1 => Some(RefreshLease {
            holder: String::decode(reader)?,
            until: DateTime::<Utc>::decode(reader)?,
        }),
        _ => return Err(DecodeError::invalid("invalid refresh lease tag")),
    };
    Ok(RefreshMark { lease, reauth_required: bool::decode(reader)? })
}

fn read_versions(reader: &mut Reader<'_>) -> std::result::Result<Vec<SealedVersion>, DecodeError> {
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
    Ok(versions)
}

fn parse_state<T: std::str::FromStr>(text: &str) -> std::result::Result<T, DecodeError> {
    text.parse().map_err(|_| DecodeError::invalid("unknown state name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sample_record;

    #[test]
    fn the_metadata_is_read_without_the_sealed_versions() {
        let mut record = sample_record("codec/meta", "certificate", &vec![0xAB; 1 << 20]);
        record.meta.revision = 7;
        let bytes = encode(&record);
        assert_eq!(decode(&bytes).unwrap(), record);
        assert_eq!(decode_meta(&bytes).unwrap(), record.meta);
        // What follows the metadata is not even looked at: a cut payload still lists.
        let cut = &bytes[..bytes.len() - 10];
        assert!(matches!(decode(cut), Err(Error::CorruptRecord { .. })));
        assert_eq!(decode_meta(cut).unwrap(), record.meta);
        assert!(matches!(decode_meta(b"nope"), Err(Error::CorruptRecord { .. })));
    }

    #[test]
    fn the_refresh_mark_round_trips_and_records_written_before_it_still_read() {
        let mut record = sample_record("codec/refresh", "oauth2_token", b"sealed");
        record.meta.refresh = RefreshMark {
            lease: Some(RefreshLease {
                holder: "host-1/42".to_owned(),
                until: record.meta.updated_at + chrono::Duration::seconds(30),
            }),
            reauth_required: true,
        };
        assert_eq!(decode(&encode(&record)).unwrap(), record);

        // The same record, untagged and without an anchor, in formats 3, 2 and 1: no anchor (one
        // byte for none), in 2 no tag either (one byte for an empty one), and in 1 no refresh
        // mark (two bytes) either, between the key id and the versions.
        record.meta.refresh = RefreshMark::default();
        record.meta.tag.clear();
        record.meta.trail = None;
        let current = encode(&record);
        let versions_at = current.len() - versions_len(&record);
        let formats =
            [(VERSION_WITHOUT_ANCHOR, 1), (VERSION_WITHOUT_TAG, 2), (VERSION_WITHOUT_REFRESH, 4)];
        for (version, cut) in formats {
            let mut old = current[..versions_at - cut].to_vec();
            old[4] = version;
            old.extend_from_slice(&current[versions_at..]);
            assert_eq!(decode(&old).unwrap(), record, "format {version}");
        }
        assert!(matches!(
            decode(&[b"CRDR".as_slice(), &[VERSION + 1]].concat()),
            Err(Error::CorruptRecord { .. })
        ));
    }

    #[test]
    fn the_tag_round_trips_with_the_metadata() {
        let mut record = sample_record("codec/tag", "api_key", b"sealed");
        record.meta.tag = vec![1; 29];
        let bytes = encode(&record);
        assert_eq!(decode(&bytes).unwrap(), record);
        assert_eq!(decode_meta(&bytes).unwrap().tag, vec![1; 29]);
    }

    #[test]
    fn the_trail_anchor_round_trips_with_the_metadata() {
        let mut record = sample_record("codec/anchor", "api_key", b"sealed");
        record.meta.trail = Some(TrailAnchor::new(&"a".repeat(64), 1234, &"b".repeat(64)));
        let bytes = encode(&record);
        assert_eq!(decode(&bytes).unwrap(), record);
        assert_eq!(decode_meta(&bytes).unwrap().trail, record.meta.trail);
    }

    /// How many bytes the versions take at the end of `record`'s encoding.
    fn versions_len(record: &Record) -> usize {
        let alone = Record { meta: record.meta.clone(), versions: Vec::new() };
        encode(record).len() - encode(&alone).len() + 1
    }
}
