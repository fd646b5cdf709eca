//! [`FieldCodec`]: how each field type is written to and read from the storage encoding.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::encoding::{DecodeError, DecodeReason, Reader, Writer};

/// Writes a field's value from text; see [`FieldCodec::encode_text`].
#[doc(hidden)]
pub type TextEncoder = fn(&str, &mut Writer) -> Result<(), DecodeError>;

/// Writes `value`, parsed from `text` by `parse`, as `encode` does: for plain types, whose
/// parsed value is no secret.
fn encode_parsed<T: FieldCodec>(
    text: &str,
    writer: &mut Writer,
    parse: impl FnOnce(&str) -> Option<T>,
    expected: &'static str,
) -> Result<(), DecodeError> {
    let value = parse(text.trim()).ok_or(DecodeError::invalid(expected))?;
    value.encode(writer);
    Ok(())
}

/// How a field value is written to and read from the storage encoding (see the format in
/// [`Writer`]'s module).
///
/// Implemented for the text, number, time, URL, list and map types the derive supports, for the
/// secret types, and for `Option` of any of them. Implement it, together with
/// [`PlainField`](crate::field::PlainField), to store a type of your own.
///
/// ```
/// use credential::field::{DecodeError, FieldCodec, Reader, Writer};
///
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// enum Region { Eu, Us }
///
/// impl FieldCodec for Region {
///     fn encode(&self, writer: &mut Writer) {
///         writer.u8(match self { Region::Eu => 0, Region::Us => 1 });
///     }
///     fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
///         match reader.u8()? {
///             0 => Ok(Region::Eu),
///             1 => Ok(Region::Us),
///             _ => Err(DecodeError::invalid("unknown region")),
///         }
///     }
/// }
/// ```
pub trait FieldCodec: Sized {
    /// Writes the value. Called twice per encoding (sizing, then writing): it must write the same
    /// bytes both times.
    fn encode(&self, writer: &mut Writer);

    /// Reads a value written by [`encode`](Self::encode).
    ///
    /// # Errors
    /// A [`DecodeError`] for malformed input; never panics.
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Writes the value `text` spells exactly as [`encode`](Self::encode) would write it, for
    /// building a credential from text (an operator's command line, say). Secrets are written
    /// straight from `text` into the zeroizing output, never into a copy of their own.
    ///
    /// # Errors
    /// A [`DecodeError`] when `text` does not spell a value of this type, or the type cannot be
    /// written from text (the default).
    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        let _ = (text, writer);
        Err(DecodeError::invalid("this type cannot be set from text"))
    }

    /// The value a record without this field decodes to, if the type has a natural one (`None`
    /// for `Option`). Returning `None` makes the field required.
    fn missing() -> Option<Self> {
        None
    }
}

impl FieldCodec for String {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        writer.len_prefixed(self.as_bytes());
    }

    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        writer.len_prefixed(text.as_bytes());
        Ok(())
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.str().map(str::to_owned)
    }
}

impl FieldCodec for SecretString {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        writer.len_prefixed(self.expose_secret().as_bytes());
    }

    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        writer.len_prefixed(text.as_bytes());
        Ok(())
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // `Box<str>::from(&str)` allocates exactly once, at the final size: no partial copy is
        // left behind.
        reader.str().map(|text| SecretString::new(Box::from(text)))
    }
}

impl FieldCodec for SecretSlice<u8> {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        writer.len_prefixed(self.expose_secret());
    }

    /// Bytes are given as standard base64, decoded into a buffer that is wiped.
    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        use base64ct::Encoding;
        let mut buffer = zeroize::Zeroizing::new(vec![0u8; text.len()]);
        let bytes = base64ct::Base64::decode(text.trim(), &mut buffer)
            .map_err(|_| DecodeError::invalid("not standard base64"))?;
        writer.len_prefixed(bytes);
        Ok(())
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.len_prefixed().map(|bytes| SecretSlice::from(Box::<[u8]>::from(bytes)))
    }
}

impl FieldCodec for bool {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        writer.u8(u8::from(*self));
    }

    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        encode_parsed(text, writer, |text| text.parse::<bool>().ok(), "not `true` or `false`")
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::invalid("boolean is neither 0 nor 1")),
        }
    }
}

macro_rules! unsigned_codec {
    ($($ty:ty),*) => {$(
        impl FieldCodec for $ty {
            #[inline]
    fn encode(&self, writer: &mut Writer) {
                writer.varint(*self as u64);
            }

            #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                <$ty>::try_from(reader.varint()?)
                    .map_err(|_| DecodeError::new(DecodeReason::OutOfRange))
            }

            fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
                encode_parsed(text, writer, |text| text.parse::<$ty>().ok(), "not an unsigned integer in range")
            }
        }
    )*};
}

unsigned_codec!(u8, u16, u32, u64, usize);

macro_rules! signed_codec {
    ($($ty:ty),*) => {$(
        impl FieldCodec for $ty {
            #[inline]
    fn encode(&self, writer: &mut Writer) {
                writer.varint(zigzag(*self as i64));
            }

            #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                <$ty>::try_from(unzigzag(reader.varint()?))
                    .map_err(|_| DecodeError::new(DecodeReason::OutOfRange))
            }

            fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
                encode_parsed(text, writer, |text| text.parse::<$ty>().ok(), "not an integer in range")
            }
        }
    )*};
}

signed_codec!(i8, i16, i32, i64, isize);

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

impl FieldCodec for f64 {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        writer.bytes(&self.to_le_bytes());
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes = reader.bytes(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(f64::from_le_bytes(array))
    }

    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        encode_parsed(text, writer, |text| text.parse::<f64>().ok(), "not a number")
    }
}

impl FieldCodec for DateTime<Utc> {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        writer.varint(zigzag(self.timestamp()));
        writer.varint(u64::from(self.timestamp_subsec_nanos()));
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let seconds = unzigzag(reader.varint()?);
        let nanos = u32::try_from(reader.varint()?)
            .map_err(|_| DecodeError::new(DecodeReason::OutOfRange))?;
        DateTime::from_timestamp(seconds, nanos).ok_or(DecodeError::new(DecodeReason::OutOfRange))
    }

    /// Times are given in RFC 3339 (`2026-11-29T21:00:00Z`).
    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        let parse = |text: &str| DateTime::parse_from_rfc3339(text).ok().map(|at| at.to_utc());
        encode_parsed(text, writer, parse, "not an RFC 3339 time")
    }
}

#[cfg(feature = "url")]
impl FieldCodec for url::Url {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        writer.len_prefixed(self.as_str().as_bytes());
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        url::Url::parse(reader.str()?)
            .map_err(|_| DecodeError::invalid("stored URL does not parse"))
    }

    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        encode_parsed(text, writer, |text| url::Url::parse(text).ok(), "not an absolute URL")
    }
}

impl<T: FieldCodec> FieldCodec for Option<T> {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        match self {
            None => writer.u8(0),
            Some(value) => {
                writer.u8(1);
                value.encode(writer);
            }
        }
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            0 => Ok(None),
            1 => T::decode(reader).map(Some),
            _ => Err(DecodeError::invalid("option tag is neither 0 nor 1")),
        }
    }

    /// Text always means `Some`; leave the field out for `None`.
    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        writer.u8(1);
        T::encode_text(text, writer)
    }

    fn missing() -> Option<Self> {
        Some(None)
    }
}

impl<T: FieldCodec> FieldCodec for Vec<T> {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        writer.varint(self.len() as u64);
        for item in self {
            item.encode(writer);
        }
    }

    /// Items separated by commas, each trimmed and read as its type reads text (`api, read` is
    /// two items); empty text is the empty list. An item cannot hold a comma.
    fn encode_text(text: &str, writer: &mut Writer) -> Result<(), DecodeError> {
        let text = text.trim();
        if text.is_empty() {
            writer.varint(0);
            return Ok(());
        }
        writer.varint(text.split(',').count() as u64);
        for item in text.split(',') {
            T::encode_text(item.trim(), writer)?;
        }
        Ok(())
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // `count` bounds the length by the remaining input; a zero-sized item type cannot make
        // the loop longer than the input either.
        let count = reader.count()?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::decode(reader)?);
        }
        Ok(items)
    }
}

impl<T: FieldCodec> FieldCodec for BTreeMap<String, T> {
    #[inline]
    fn encode(&self, writer: &mut Writer) {
        writer.varint(self.len() as u64);
        for (key, value) in self {
            writer.len_prefixed(key.as_bytes());
            value.encode(writer);
        }
    }

    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = reader.count()?;
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let key = reader.str()?.to_owned();
            let value = T::decode(reader)?;
            if map.insert(key, value).is_some() {
                return Err(DecodeError::invalid("map key appears more than once"));
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: FieldCodec>(value: &T) -> T {
        let bytes = crate::encoding::encode_with("t", 0, |w| value.encode(w));
        // Skip the header written by `encode_with`: version, kind, field count.
        let mut reader = Reader::new(&bytes[4..]);
        let decoded = T::decode(&mut reader).unwrap();
        assert!(reader.is_empty());
        decoded
    }

    #[test]
    fn integers_round_trip_at_their_limits() {
        assert_eq!(round_trip(&i64::MIN), i64::MIN);
        assert_eq!(round_trip(&i64::MAX), i64::MAX);
        assert_eq!(round_trip(&-1i8), -1);
        assert_eq!(round_trip(&u64::MAX), u64::MAX);
        assert_eq!(round_trip(&u16::MAX), u16::MAX);
    }

    #[test]
    fn oversized_integer_is_out_of_range() {
        let bytes = crate::encoding::encode_with("t", 0, |w| 70_000u32.encode(w));
        let error = u16::decode(&mut Reader::new(&bytes[4..])).unwrap_err();
        assert_eq!(error.reason(), &DecodeReason::OutOfRange);
    }

    #[test]
    fn timestamps_keep_nanoseconds() {
        let at = DateTime::from_timestamp(-1_234_567, 999_999_999).unwrap();
        assert_eq!(round_trip(&at), at);
    }

    #[test]
    fn invalid_bool_and_option_tags_are_errors() {
        assert!(bool::decode(&mut Reader::new(&[2])).is_err());
        assert!(Option::<bool>::decode(&mut Reader::new(&[7])).is_err());
    }

    #[test]
    fn duplicate_map_keys_are_errors() {
        let bytes = [2, 1, b'a', 1, 1, b'a', 0];
        assert!(BTreeMap::<String, bool>::decode(&mut Reader::new(&bytes)).is_err());
    }

    #[test]
    fn secret_text_round_trips() {
        let secret = SecretString::from("s3cr3t ✓");
        assert_eq!(round_trip(&secret).expose_secret(), "s3cr3t ✓");
    }

    #[test]
    fn lists_are_set_from_comma_separated_text() {
        let from_text = |text: &str| {
            let bytes = crate::encoding::encode_with("t", 0, |w| {
                Vec::<String>::encode_text(text, w).unwrap();
            });
            Vec::<String>::decode(&mut Reader::new(&bytes[4..])).unwrap()
        };
        assert_eq!(from_text("api, read ,write"), ["api", "read", "write"]);
        assert_eq!(from_text("api"), ["api"]);
        assert!(from_text("  ").is_empty());
        let refused = std::cell::Cell::new(false);
        crate::encoding::encode_with("t", 0, |w| {
            refused.set(Vec::<u16>::encode_text("1, two", w).is_err());
        });
        assert!(refused.get(), "an item that does not read is an error");
    }
}
