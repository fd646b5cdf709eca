//! The plaintext inside a backup: one JSON document holding every exported credential with its
//! versions, each version's fields as a JSON object (secrets in the clear: what an operator with
//! the key reads by hand) and its payload in base64 (what an import restores, checked against the
//! fields). It only ever exists in memory that is wiped, between the store and the age
//! encryption.

use std::collections::BTreeSet;

use base64ct::{Base64, Encoding};
use chrono::{DateTime, Utc};
use credential::{
    ExportedCredential, ExportedVersion, ExposeSecret, LifecycleState, SecretSlice, SecretString,
    VersionState,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use zeroize::{Zeroize, Zeroizing};

use crate::exit::{Failure, Outcome, Status};

/// What the `format` field of a backup says.
pub(crate) const FORMAT: &str = "credential-backup";
/// The version of the document this build writes.
pub(crate) const VERSION: u32 = 2;
/// The version before versions showed their fields; still read.
const VERSION_WITHOUT_FIELDS: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Document {
    format: String,
    version: u32,
    environment: String,
    exported_at: DateTime<Utc>,
    credentials: Vec<Credential>,
}

#[derive(Serialize, Deserialize)]
struct Credential {
    id: String,
    kind: String,
    state: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    tags: BTreeSet<String>,
    versions: Vec<Version>,
}

#[derive(Serialize, Deserialize)]
struct Version {
    version: u64,
    state: String,
    created_at: DateTime<Utc>,
    changed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fields: Option<Fields>,
    payload: Option<Payload>,
}

/// A version's fields, the JSON object written into the document as it is (not as a string),
/// wiped when dropped.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Fields(Option<Box<RawValue>>);

impl Drop for Fields {
    fn drop(&mut self) {
        if let Some(raw) = self.0.take() {
            let mut text: Box<str> = raw.into();
            text.zeroize();
        }
    }
}

/// A payload in base64, wiped when dropped.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Payload(String);

impl Drop for Payload {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The document for `credentials` exported from `environment`.
pub(crate) fn encode(
    environment: &str,
    credentials: &[ExportedCredential],
) -> Outcome<Zeroizing<Vec<u8>>> {
    let document = Document {
        format: FORMAT.to_owned(),
        version: VERSION,
        environment: environment.to_owned(),
        exported_at: Utc::now(),
        credentials: credentials.iter().map(Credential::from_exported).collect(),
    };
    // Sized up front, so the buffer is not reallocated (leaving unwiped copies) while it grows.
    let estimate: usize = credentials
        .iter()
        .flat_map(|credential| &credential.versions)
        .filter_map(|version| version.payload.as_ref())
        .map(|payload| payload.expose_secret().len() * 4 / 3 + 256)
        .sum();
    let mut bytes = Zeroizing::new(Vec::with_capacity(estimate + 4096));
    serde_json::to_writer(&mut *bytes, &document).map_err(|error| {
        Failure::new(Status::Failed, "backup", format!("cannot write the backup: {error}"))
    })?;
    Ok(bytes)
}

/// The environment and credentials in a decrypted backup.
pub(crate) fn decode(bytes: &[u8]) -> Outcome<(String, Vec<ExportedCredential>)> {
    let not_a_backup = |what: &str| {
        Failure::new(Status::Integrity, "not_a_backup", format!("not a credential backup: {what}"))
    };
    let document: Document = serde_json::from_slice(bytes)
        .map_err(|_| not_a_backup("the content is not its JSON document"))?;
    if document.format != FORMAT {
        return Err(not_a_backup("unknown format"));
    }
    if !matches!(document.version, VERSION | VERSION_WITHOUT_FIELDS) {
        return Err(not_a_backup(&format!(
            "version {} (this build reads versions {VERSION_WITHOUT_FIELDS} and {VERSION})",
            document.version
        )));
    }
    let credentials =
        document.credentials.iter().map(Credential::to_exported).collect::<Outcome<Vec<_>>>()?;
    Ok((document.environment, credentials))
}

impl Credential {
    fn from_exported(exported: &ExportedCredential) -> Self {
        Self {
            id: exported.id.clone(),
            kind: exported.kind.clone(),
            state: exported.state.as_str().to_owned(),
            created_at: exported.created_at,
            expires_at: exported.expires_at,
            tags: exported.tags.clone(),
            versions: exported
                .versions
                .iter()
                .map(|version| Version {
                    version: version.version,
                    state: version.state.as_str().to_owned(),
                    created_at: version.created_at,
                    changed_at: version.changed_at,
                    fields: version.fields.as_ref().and_then(|fields| {
                        // The library's JSON, which always reads; written as it is.
                        let raw = RawValue::from_string(fields.expose_secret().to_owned()).ok()?;
                        Some(Fields(Some(raw)))
                    }),
                    payload: version
                        .payload
                        .as_ref()
                        .map(|payload| Payload(Base64::encode_string(payload.expose_secret()))),
                })
                .collect(),
        }
    }

    fn to_exported(&self) -> Outcome<ExportedCredential> {
        let invalid = |what: &str| {
            Failure::new(
                Status::Integrity,
                "not_a_backup",
                format!("credential `{}` in the backup: {what}", self.id.escape_debug()),
            )
        };
        let state: LifecycleState = self.state.parse().map_err(|_| invalid("unknown state"))?;
        let versions = self
            .versions
            .iter()
            .map(|version| {
                let state: VersionState =
                    version.state.parse().map_err(|_| invalid("unknown version state"))?;
                let payload = match &version.payload {
                    None => None,
                    Some(Payload(text)) => {
                        let bytes = Zeroizing::new(
                            Base64::decode_vec(text)
                                .map_err(|_| invalid("a payload is not base64"))?,
                        );
                        Some(SecretSlice::from(bytes.to_vec()))
                    }
                };
                let fields = version.fields.as_ref().and_then(|fields| fields.0.as_ref());
                Ok(ExportedVersion {
                    version: version.version,
                    state,
                    created_at: version.created_at,
                    changed_at: version.changed_at,
                    payload,
                    fields: fields.map(|raw| SecretString::from(raw.get())),
                })
            })
            .collect::<Outcome<Vec<_>>>()?;
        Ok(ExportedCredential {
            id: self.id.clone(),
            kind: self.kind.clone(),
            state,
            created_at: self.created_at,
            expires_at: self.expires_at,
            tags: self.tags.clone(),
            versions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ExportedCredential {
        let now = Utc::now();
        ExportedCredential {
            id: "github/main".into(),
            kind: "api_key".into(),
            state: LifecycleState::Active,
            created_at: now,
            expires_at: None,
            tags: BTreeSet::new(),
            versions: vec![ExportedVersion {
                version: 1,
                state: VersionState::Current,
                created_at: now,
                changed_at: now,
                payload: Some(SecretSlice::from(b"encoded".to_vec())),
                fields: Some(SecretString::from(r#"{"key":"sk"}"#)),
            }],
        }
    }

    #[test]
    fn a_document_reads_back_what_was_written() {
        let bytes = encode("prod", &[sample()]).unwrap_or_else(|_| panic!("encode"));
        let (environment, credentials) = decode(&bytes).unwrap_or_else(|_| panic!("decode"));
        assert_eq!(environment, "prod");
        assert_eq!(credentials.len(), 1);
        let payload =
            credentials[0].versions[0].payload.as_ref().map(|p| p.expose_secret().to_vec());
        assert_eq!(payload.as_deref(), Some(&b"encoded"[..]));
        let fields =
            credentials[0].versions[0].fields.as_ref().map(|f| f.expose_secret().to_owned());
        assert_eq!(fields.as_deref(), Some(r#"{"key":"sk"}"#));
        // The fields are a JSON object in the document, not a string holding one.
        let document: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(document["credentials"][0]["versions"][0]["fields"]["key"], "sk");
    }

    #[test]
    fn a_document_from_before_fields_still_reads() {
        let old = br#"{"format":"credential-backup","version":1,"environment":"x",
            "exported_at":"2026-01-01T00:00:00Z","credentials":[{"id":"a","kind":"api_key",
            "state":"active","created_at":"2026-01-01T00:00:00Z","expires_at":null,"tags":[],
            "versions":[{"version":1,"state":"current","created_at":"2026-01-01T00:00:00Z",
            "changed_at":"2026-01-01T00:00:00Z","payload":"AAEC"}]}]}"#;
        let (_, credentials) = decode(old).unwrap_or_else(|_| panic!("decode"));
        assert!(credentials[0].versions[0].fields.is_none());
    }

    #[test]
    fn anything_else_is_refused_as_not_a_backup() {
        let other = br#"{"format":"other","version":1,"environment":"x",
            "exported_at":"2026-01-01T00:00:00Z","credentials":[]}"#;
        for bad in [&b"{}"[..], b"not json", other] {
            let Err(failure) = decode(bad) else { panic!("accepted") };
            assert_eq!(failure.status, Status::Integrity);
        }
    }
}
