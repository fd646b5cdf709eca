//! The storage encoding of a credential: the plaintext that later gets sealed.
//!
//! Format version 1, all integers unsigned LEB128 (`varint`) unless noted:
//!
//! ```text
//! u8      format version (1)
//! varint  kind length, then the kind's UTF-8 bytes
//! varint  number of fields
//! per field:
//!   varint  stored name length, then the name's UTF-8 bytes
//!   varint  value length, then the value's bytes (see below)
//! ```
//!
//! Values: text and bytes are `varint length + bytes`; `bool` is one byte `0` or `1`; unsigned
//! integers are a varint, signed ones a zig-zag varint; `f64` is 8 bytes little endian; a timestamp
//! is a zig-zag varint of Unix seconds then a varint of nanoseconds; `Option` is a byte `0` (none)
//! or `1` followed by the value; lists and maps are a varint count followed by the items (map
//! entries as key text then value).
//!
//! Decoding is strict: every length is checked against the remaining input, every field value must
//! be consumed exactly, a field may appear once, and nothing may follow the last field. Fields the
//! type does not know are skipped (a field removed from the struct keeps old records loadable);
//! fields the record lacks take their default when the type has one (`Option` fields, or
//! `#[credential(default)]`).
//!
//! The encoder never lets a `Vec` reallocate on its own: the exact size is counted first and any
//! growth copies into a new buffer and wipes the old one, so no copy of a secret is left behind in
//! freed memory.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// The version byte written at the start of every encoding.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Writes field values into the storage encoding.
///
/// A writer either counts bytes (the sizing pass) or writes them into a zeroizing buffer; field
/// codecs call the same methods in both passes and never need to know which one runs.
#[derive(Debug)]
pub struct Writer {
    buf: Zeroizing<Vec<u8>>,
    counted: usize,
    counting: bool,
}

impl Writer {
    fn counter() -> Self {
        Self { buf: Zeroizing::new(Vec::new()), counted: 0, counting: true }
    }

    fn with_capacity(capacity: usize) -> Self {
        Self { buf: Zeroizing::new(Vec::with_capacity(capacity)), counted: 0, counting: false }
    }

    /// Appends raw bytes.
    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) {
        if self.counting {
            self.counted += bytes.len();
            return;
        }
        self.reserve(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// Appends one byte.
    #[inline]
    pub fn u8(&mut self, byte: u8) {
        self.bytes(&[byte]);
    }

    /// Appends an unsigned LEB128 integer.
    #[inline]
    pub fn varint(&mut self, mut value: u64) {
        let mut scratch = [0u8; 10];
        let mut len = 0;
        loop {
            let low = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                scratch[len] = low;
                len += 1;
                break;
            }
            scratch[len] = low | 0x80;
            len += 1;
        }
        self.bytes(&scratch[..len]);
    }

    /// Appends a length-prefixed byte string.
    #[inline]
    pub fn len_prefixed(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.bytes(bytes);
    }

    /// Grows the buffer by copying into a fresh allocation and wiping the old one, so the
    /// allocator never receives a block that still holds encoded secrets.
    #[cold]
    fn grow(&mut self, needed: usize) {
        let mut grown = Vec::with_capacity(needed.max(self.buf.capacity() * 2));
        grown.extend_from_slice(&self.buf);
        self.buf.zeroize();
        self.buf = Zeroizing::new(grown);
    }

    #[inline]
    fn reserve(&mut self, additional: usize) {
        let needed = self.buf.len() + additional;
        if needed > self.buf.capacity() {
            self.grow(needed);
        }
    }

    #[inline]
    fn len(&self) -> usize {
        if self.counting { self.counted } else { self.buf.len() }
    }
}

/// Encodes a credential: `fields` is called once to size the output and once to write it.
pub(crate) fn encode_with(
    kind: &str,
    field_count: usize,
    fields: impl Fn(&mut Writer),
) -> Zeroizing<Vec<u8>> {
    write_exact(|writer| {
        write_header(writer, kind, field_count);
        fields(writer);
    })
}

/// Runs `write` once to count and once to write into a buffer of exactly the counted size.
pub(crate) fn write_exact(write: impl Fn(&mut Writer)) -> Zeroizing<Vec<u8>> {
    let mut counter = Writer::counter();
    write(&mut counter);
    let mut writer = Writer::with_capacity(counter.len());
    write(&mut writer);
    writer.buf
}

fn write_header(writer: &mut Writer, kind: &str, field_count: usize) {
    writer.u8(FORMAT_VERSION);
    writer.len_prefixed(kind.as_bytes());
    writer.varint(field_count as u64);
}

/// Writes one field: its stored name, then its value prefixed by the value's length.
pub(crate) fn write_field(writer: &mut Writer, name: &str, value: &impl crate::field::FieldCodec) {
    writer.len_prefixed(name.as_bytes());
    let mut counter = Writer::counter();
    value.encode(&mut counter);
    let value_len = counter.len();
    writer.varint(value_len as u64);
    if writer.counting {
        writer.counted += value_len;
    } else {
        value.encode(writer);
    }
}

/// Encodes a credential of `kind` from text: each field as its name, its encoder and the text to
/// encode. Every text is checked before anything is written.
///
/// # Errors
/// The first field whose text its encoder refuses.
pub(crate) fn encode_from_text(
    kind: &str,
    fields: &[(&'static str, crate::codec::TextEncoder, &str)],
) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    for (name, encode, text) in fields {
        encode(text, &mut Writer::counter()).map_err(|error| error.in_field(name))?;
    }
    Ok(encode_with(kind, fields.len(), |writer| {
        for (name, encode, text) in fields {
            writer.len_prefixed(name.as_bytes());
            let mut counter = Writer::counter();
            // Checked above: encoders are deterministic.
            let _ = encode(text, &mut counter);
            writer.varint(counter.len() as u64);
            if writer.counting {
                writer.counted += counter.len();
            } else {
                let _ = encode(text, writer);
            }
        }
    }))
}

/// Reads field values from the storage encoding. Every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Whether every byte has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Reads exactly `len` raw bytes.
    ///
    /// # Errors
    /// [`DecodeReason::Truncated`] when fewer bytes are left.
    #[inline]
    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.bytes.len() {
            return Err(DecodeError::new(DecodeReason::Truncated));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`DecodeReason::Truncated`] at the end of the input.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    /// Reads an unsigned LEB128 integer of at most 64 bits.
    ///
    /// # Errors
    /// [`DecodeReason::Truncated`] or [`DecodeReason::OutOfRange`] for an over-long integer.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for index in 0..10 {
            let byte = self.u8()?;
            let low = u64::from(byte & 0x7f);
            if index == 9 && low > 1 {
                return Err(DecodeError::new(DecodeReason::OutOfRange));
            }
            value |= low << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::new(DecodeReason::OutOfRange))
    }

    /// Reads a varint that counts bytes or items still to come, refusing counts larger than the
    /// input so hostile lengths cannot trigger huge allocations.
    ///
    /// # Errors
    /// [`DecodeReason::Truncated`] when the count exceeds the remaining input.
    #[inline]
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let value = self.varint()?;
        usize::try_from(value)
            .ok()
            .filter(|count| *count <= self.bytes.len())
            .ok_or(DecodeError::new(DecodeReason::Truncated))
    }

    /// Reads a length-prefixed byte string.
    ///
    /// # Errors
    /// [`DecodeReason::Truncated`] when the prefix promises more than is left.
    #[inline]
    pub fn len_prefixed(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.count()?;
        self.bytes(len)
    }

    /// Reads length-prefixed UTF-8 text.
    ///
    /// # Errors
    /// [`DecodeReason::Truncated`] or [`DecodeReason::InvalidUtf8`].
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.len_prefixed()?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::new(DecodeReason::InvalidUtf8))
    }
}

/// Decodes the header and walks the fields of an encoding, calling `on_field` with each field's
/// stored name and a reader limited to its value. `on_field` returns `false` for a field the type
/// does not know, which is then skipped.
pub(crate) fn decode_with<'a>(
    expected_kind: &str,
    bytes: &'a [u8],
    mut on_field: impl FnMut(&'a [u8], &mut Reader<'a>) -> Result<bool, DecodeError>,
) -> crate::Result<()> {
    let decode_error =
        |source: DecodeError| crate::Error::Decode { kind: expected_kind.to_owned(), source };
    let mut reader = Reader::new(bytes);
    let version = reader.u8().map_err(decode_error)?;
    if version != FORMAT_VERSION {
        return Err(decode_error(DecodeError::new(DecodeReason::UnsupportedVersion(version))));
    }
    let kind = reader.len_prefixed().map_err(decode_error)?;
    if kind != expected_kind.as_bytes() {
        return Err(crate::Error::KindMismatch {
            expected: expected_kind.to_owned(),
            found: printable_kind(kind),
        });
    }
    let field_count = reader.varint().map_err(decode_error)?;
    for _ in 0..field_count {
        let name = reader.len_prefixed().map_err(decode_error)?;
        let mut value = Reader::new(reader.len_prefixed().map_err(decode_error)?);
        if on_field(name, &mut value).map_err(decode_error)? && !value.is_empty() {
            return Err(decode_error(DecodeError::new(DecodeReason::TrailingBytes)));
        }
    }
    if !reader.is_empty() {
        return Err(decode_error(DecodeError::new(DecodeReason::TrailingBytes)));
    }
    Ok(())
}

/// A kind read from untrusted bytes, made safe to show: at most 64 characters, control
/// characters escaped.
fn printable_kind(kind: &[u8]) -> String {
    const MAX_SHOWN: usize = 64;
    let text = String::from_utf8_lossy(kind);
    let mut shown: String = text.chars().take(MAX_SHOWN).flat_map(char::escape_debug).collect();
    if text.chars().count() > MAX_SHOWN {
        shown.push('…');
    }
    shown
}

/// Why stored bytes could not be decoded. Names the field, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    field: Option<&'static str>,
    reason: DecodeReason,
}

impl DecodeError {
    /// An error for the given reason, not yet tied to a field.
    pub fn new(reason: DecodeReason) -> Self {
        Self { field: None, reason }
    }

    /// An error for a value a codec refuses, with a fixed description (never the value).
    pub fn invalid(what: &'static str) -> Self {
        Self::new(DecodeReason::Invalid(what))
    }

    /// The stored name of the field the error is about, when known.
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// Why decoding failed.
    pub fn reason(&self) -> &DecodeReason {
        &self.reason
    }

    pub(crate) fn in_field(mut self, field: &'static str) -> Self {
        self.field.get_or_insert(field);
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "field `{field}`: {}", self.reason),
            None => self.reason.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The reasons stored bytes can fail to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeReason {
    /// The input ends before a value it announces.
    Truncated,
    /// The encoding was written by a newer format version.
    UnsupportedVersion(u8),
    /// Text is not valid UTF-8.
    InvalidUtf8,
    /// A number does not fit its type.
    OutOfRange,
    /// Bytes remain after a value or after the last field.
    TrailingBytes,
    /// A field appears twice.
    DuplicateField,
    /// A required field is absent.
    MissingField,
    /// A value its codec refuses.
    Invalid(&'static str),
}

impl fmt::Display for DecodeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("input is truncated"),
            Self::UnsupportedVersion(version) => {
                write!(f, "unsupported encoding version {version}")
            }
            Self::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            Self::OutOfRange => f.write_str("number out of range"),
            Self::TrailingBytes => f.write_str("unexpected trailing bytes"),
            Self::DuplicateField => f.write_str("field appears more than once"),
            Self::MissingField => f.write_str("required field is missing"),
            Self::Invalid(what) => f.write_str(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_edges() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut writer = Writer::with_capacity(0);
            writer.varint(value);
            let mut reader = Reader::new(&writer.buf);
            assert_eq!(reader.varint(), Ok(value));
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn overlong_varint_is_out_of_range() {
        let mut reader = Reader::new(&[0xff; 11]);
        assert_eq!(reader.varint().map_err(|e| e.reason), Err(DecodeReason::OutOfRange));
        let mut reader = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert_eq!(reader.varint().map_err(|e| e.reason), Err(DecodeReason::OutOfRange));
    }

    #[test]
    fn count_larger_than_input_is_truncated() {
        let mut reader = Reader::new(&[0x05, 1, 2]);
        assert_eq!(reader.count().map_err(|e| e.reason), Err(DecodeReason::Truncated));
    }

    #[test]
    fn writer_growth_keeps_contents() {
        let mut writer = Writer::with_capacity(1);
        for chunk in 0..100u8 {
            writer.bytes(&[chunk; 7]);
        }
        assert_eq!(writer.buf.len(), 700);
        assert!(
            writer.buf.chunks(7).enumerate().all(|(i, c)| c.iter().all(|b| usize::from(*b) == i))
        );
    }

    #[test]
    fn counting_pass_matches_written_length() {
        let fields = |w: &mut Writer| {
            w.len_prefixed(b"name");
            w.varint(1 << 40);
        };
        let encoded = encode_with("kind", 1, fields);
        assert_eq!(encoded.len(), encoded.capacity());
    }

    #[test]
    fn hostile_kind_is_escaped_and_bounded() {
        let shown = printable_kind("a\u{1b}[31m".repeat(40).as_bytes());
        assert!(!shown.contains('\u{1b}'));
        assert!(shown.ends_with('…'));
    }
}
