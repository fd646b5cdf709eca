//! Field types: what a `#[derive(Credential)]` struct's fields are made of, and what to implement
//! for a field type of your own.
//!
//! Plain fields implement [`PlainField`] (how a value is shown and read by name) and
//! [`FieldCodec`] (its storage encoding, through [`Writer`] and [`Reader`]); secret fields are
//! [`SecretField`]s. [`FieldSchema`] and [`FieldRef`] describe a kind's fields by name, for
//! templates and operator tools.
//!
//! ```
//! use credential::field::{DecodeError, FieldCodec, PlainField, PlainValue, Reader, Writer};
//!
//! /// A port number with its own encoding.
//! #[derive(Debug, Clone, Copy, PartialEq)]
//! struct Port(u16);
//!
//! impl FieldCodec for Port {
//!     fn encode(&self, writer: &mut Writer) {
//!         writer.varint(u64::from(self.0));
//!     }
//!     fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
//!         let value = reader.varint()?;
//!         u16::try_from(value).map(Port).map_err(|_| DecodeError::invalid("not a port"))
//!     }
//! }
//!
//! impl PlainField for Port {
//!     fn plain_value(&self) -> PlainValue<'_> {
//!         PlainValue::UInt(u64::from(self.0))
//!     }
//! }
//! ```

pub use secrecy::SecretBox;
#[cfg(feature = "url")]
pub use url::Url;
pub use zeroize::{Zeroize, Zeroizing};

pub use crate::codec::FieldCodec;
pub use crate::credential::{FieldRef, FieldSchema};
pub use crate::encoding::{DecodeError, DecodeReason, Reader, Writer};
pub use crate::expiry::ExpiryField;
pub use crate::plain::{PlainField, PlainValue};
pub use crate::redacted::Redacted;
pub use crate::secret::{Mask, REDACTED, RedactedSecret, SecretField, SecretValue};
