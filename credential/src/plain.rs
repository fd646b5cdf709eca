//! Plain (non-secret) fields and the value view used to show them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::field::FieldCodec;

/// A type that may be stored in a credential field without `#[secret]`.
///
/// Plain fields are stored encrypted like every other field, but they appear as they are in
/// `Debug`, the [`redacted`](crate::Credential::redacted) view and templates. Secret types do not
/// implement this trait, so a `SecretString` without `#[secret]` does not compile.
///
/// ```
/// use credential::field::{PlainField, PlainValue};
/// # use credential::field::{DecodeError, FieldCodec, Reader, Writer};
/// # #[derive(Debug)] struct Tier(u8);
/// # impl FieldCodec for Tier {
/// #     fn encode(&self, w: &mut Writer) { w.u8(self.0) }
/// #     fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> { r.u8().map(Tier) }
/// # }
/// impl PlainField for Tier {
///     fn plain_value(&self) -> PlainValue<'_> {
///         PlainValue::UInt(u64::from(self.0))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a plain credential field",
    label = "not a plain field type",
    note = "secret types such as `SecretString` need `#[secret]` on the field",
    note = "plain fields take text, numbers, `bool`, `DateTime<Utc>`, `Url`, or `Option`, `Vec` and `BTreeMap<String, _>` of those; other types implement `PlainField` and `FieldCodec`"
)]
pub trait PlainField: FieldCodec + fmt::Debug {
    /// The value as shown in redacted views and used by templates.
    fn plain_value(&self) -> PlainValue<'_>;
}

/// A plain field's value, borrowed for display, serialization and templates.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PlainValue<'a> {
    /// No value (`None`).
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Text(&'a str),
    /// A point in time, shown as RFC 3339.
    Timestamp(DateTime<Utc>),
    /// A list of values.
    List(Vec<PlainValue<'a>>),
    /// Text keys and their values, in key order.
    Map(Vec<(&'a str, PlainValue<'a>)>),
}

impl fmt::Display for PlainValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("none"),
            Self::Bool(value) => value.fmt(f),
            Self::Int(value) => value.fmt(f),
            Self::UInt(value) => value.fmt(f),
            Self::Float(value) => value.fmt(f),
            Self::Text(value) => f.write_str(value),
            Self::Timestamp(value) => {
                f.write_str(&value.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
            Self::List(items) => {
                f.write_str("[")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    item.fmt(f)?;
                }
                f.write_str("]")
            }
            Self::Map(entries) => {
                f.write_str("{")?;
                for (index, (key, value)) in entries.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}: {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl Serialize for PlainValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_none(),
            Self::Bool(value) => serializer.serialize_bool(*value),
            Self::Int(value) => serializer.serialize_i64(*value),
            Self::UInt(value) => serializer.serialize_u64(*value),
            Self::Float(value) => serializer.serialize_f64(*value),
            Self::Text(value) => serializer.serialize_str(value),
            Self::Timestamp(value) => {
                serializer.serialize_str(&value.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
            Self::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl PlainField for String {
    fn plain_value(&self) -> PlainValue<'_> {
        PlainValue::Text(self)
    }
}

impl PlainField for bool {
    fn plain_value(&self) -> PlainValue<'_> {
        PlainValue::Bool(*self)
    }
}

macro_rules! plain_number {
    ($variant:ident as $wide:ty: $($ty:ty),*) => {$(
        impl PlainField for $ty {
            fn plain_value(&self) -> PlainValue<'_> {
                PlainValue::$variant(*self as $wide)
            }
        }
    )*};
}

plain_number!(UInt as u64: u8, u16, u32, u64, usize);
plain_number!(Int as i64: i8, i16, i32, i64, isize);
plain_number!(Float as f64: f64);

impl PlainField for DateTime<Utc> {
    fn plain_value(&self) -> PlainValue<'_> {
        PlainValue::Timestamp(*self)
    }
}

#[cfg(feature = "url")]
impl PlainField for url::Url {
    fn plain_value(&self) -> PlainValue<'_> {
        PlainValue::Text(self.as_str())
    }
}

impl<T: PlainField> PlainField for Option<T> {
    fn plain_value(&self) -> PlainValue<'_> {
        self.as_ref().map_or(PlainValue::Null, PlainField::plain_value)
    }
}

impl<T: PlainField> PlainField for Vec<T> {
    fn plain_value(&self) -> PlainValue<'_> {
        PlainValue::List(self.iter().map(PlainField::plain_value).collect())
    }
}

impl<T: PlainField> PlainField for BTreeMap<String, T> {
    fn plain_value(&self) -> PlainValue<'_> {
        PlainValue::Map(
            self.iter().map(|(key, value)| (key.as_str(), value.plain_value())).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_display_compactly() {
        let tags = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(tags.plain_value().to_string(), "[a, b]");
        assert_eq!(None::<u16>.plain_value().to_string(), "none");
        let at = DateTime::from_timestamp(0, 0).unwrap();
        assert_eq!(at.plain_value().to_string(), "1970-01-01T00:00:00Z");
        let map = BTreeMap::from([("sslmode".to_owned(), "require".to_owned())]);
        assert_eq!(map.plain_value().to_string(), "{sslmode: require}");
    }
}
