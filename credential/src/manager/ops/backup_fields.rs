//! A version's fields as a JSON object, secrets in the clear: the form of an exported version an
//! operator reads by hand. The storage encoding stays what an import restores; this form is
//! checked against it, so a hand-edited backup is refused rather than silently restored as it
//! was.

use base64ct::{Base64, Encoding};
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeMap, Serializer};
use zeroize::{Zeroize, Zeroizing};

use crate::credential::FieldRef;
use crate::manager::registry::Decoded;
use crate::plain::PlainValue;
use crate::secret::SecretValue;
use crate::{Error, Result};

/// One field's value as the JSON form shows it.
enum Shown<'a> {
    Plain(PlainValue<'a>),
    Text(&'a str),
    Null,
}

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Plain(value) => value.serialize(serializer),
            Self::Text(text) => serializer.serialize_str(text),
            Self::Null => serializer.serialize_none(),
        }
    }
}

/// The fields of `decoded`, in its kind's order, as one JSON object: plain fields as JSON
/// values, secret text as a string, secret bytes as standard base64, an unset optional field as
/// `null`.
pub(crate) fn to_json(decoded: &Decoded, size_hint: usize) -> Result<SecretString> {
    let fields = &decoded.fields;
    // Sized up front, so the buffer is not reallocated (leaving unwiped copies) while it grows.
    let mut json = Zeroizing::new(Vec::with_capacity(size_hint * 2 + 256));
    let mut serializer = serde_json::Serializer::new(&mut *json);
    let mut map = serializer.serialize_map(Some(fields.schema().len())).map_err(json_error)?;
    for field in fields.schema() {
        let Some(value) = fields.field(field.name) else { continue };
        let bytes;
        let shown = match value {
            FieldRef::Plain(plain) => Shown::Plain(plain),
            FieldRef::Secret(SecretValue::Text(text), _) => Shown::Text(text.expose_secret()),
            FieldRef::Secret(SecretValue::Bytes(secret), _) => {
                bytes = Zeroizing::new(Base64::encode_string(secret.expose_secret()));
                Shown::Text(bytes.as_str())
            }
            FieldRef::Secret(SecretValue::Absent, _) => Shown::Null,
        };
        map.serialize_entry(field.name, &shown).map_err(json_error)?;
    }
    map.end().map_err(json_error)?;
    // Copied at its exact size into the secret (a `String` of spare capacity would be shrunk by
    // reallocating, leaving the old buffer unwiped); the buffer is wiped when dropped.
    let text = std::str::from_utf8(&json)
        .map_err(|_| Error::CorruptRecord { reason: "a field is not UTF-8 text".to_owned() })?;
    Ok(SecretString::from(text))
}

/// Whether `given`, a JSON form read from a backup, holds the same fields as `expected`, the
/// form of the payload it came with (key order and layout aside). Both parsed forms are wiped.
pub(crate) fn same(given: &SecretString, expected: &SecretString) -> bool {
    let parse =
        |text: &SecretString| serde_json::from_str::<serde_json::Value>(text.expose_secret());
    match (parse(given), parse(expected)) {
        (Ok(mut given), Ok(mut expected)) => {
            let same = given == expected;
            wipe(&mut given);
            wipe(&mut expected);
            same
        }
        (given, expected) => {
            for mut value in [given, expected].into_iter().flatten() {
                wipe(&mut value);
            }
            false
        }
    }
}

/// Zeroes every string in `value`.
fn wipe(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => text.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        serde_json::Value::Object(entries) => entries.values_mut().for_each(wipe),
        _ => {}
    }
}

fn json_error(error: serde_json::Error) -> Error {
    Error::CorruptRecord { reason: format!("cannot show the fields as JSON: {error}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Credential;
    use crate::kinds::{BasicAuth, OAuth2Token};
    use crate::manager::registry::Decoder;

    fn decoded<C: Credential>(credential: &C) -> Decoded {
        let bytes = credential.encode();
        Decoder::of::<C>().decode(&bytes).unwrap()
    }

    #[test]
    fn fields_show_as_json_values_in_the_kinds_order_and_compare_by_content() {
        let auth = BasicAuth { username: "ops".into(), password: "hunter2-canary".into() };
        let json = to_json(&decoded(&auth), 64).unwrap();
        assert_eq!(json.expose_secret(), r#"{"username":"ops","password":"hunter2-canary"}"#);
        let reordered =
            SecretString::from(r#"{ "password": "hunter2-canary", "username": "ops" }"#);
        assert!(same(&reordered, &json), "order and layout do not matter");
        let edited = SecretString::from(r#"{"username":"ops","password":"changed"}"#);
        assert!(!same(&edited, &json));
        assert!(!same(&SecretString::from("not json"), &json));
    }

    #[test]
    fn lists_are_arrays_and_unset_fields_are_null() {
        let token = OAuth2Token {
            access_token: "at-canary".into(),
            refresh_token: None,
            token_type: "Bearer".into(),
            scopes: vec!["a,b".into(), "c".into()],
            expires: None,
            client: None,
        };
        let json: serde_json::Value =
            serde_json::from_str(to_json(&decoded(&token), 64).unwrap().expose_secret()).unwrap();
        assert_eq!(json["scopes"], serde_json::json!(["a,b", "c"]));
        assert_eq!(json["refresh_token"], serde_json::Value::Null);
        assert_eq!(json["access_token"], "at-canary");
    }
}
