//! A bearer token, with the expiry of a JWT read from its `exp` claim.

use base64ct::Encoding;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate as credential;

/// A bearer token (`Authorization: Bearer …`).
///
/// When the token is a JWT, [`BearerToken::new`] takes `expires` from its `exp` claim. The claim is
/// read **without verifying the signature**: it only tells the manager when to stop serving the
/// token, it is not a proof of anything. A token that is not a JWT has no expiry unless one is set.
///
/// ```
/// use credential::kinds::BearerToken;
/// use credential::Credential;
///
/// // header {"alg":"none"}, payload {"exp":1900000000}
/// let token = BearerToken::new("eyJhbGciOiJub25lIn0.eyJleHAiOjE5MDAwMDAwMDB9.".into());
/// assert_eq!(token.expires_at().map(|at| at.timestamp()), Some(1_900_000_000));
/// ```
#[derive(credential::Credential)]
#[credential(kind = "bearer_token", crate = "crate")]
pub struct BearerToken {
    /// The token.
    #[secret(reveal_last = 4)]
    #[credential(validate(non_empty))]
    pub token: SecretString,
    /// When the token stops being valid.
    #[credential(expires_at)]
    pub expires: Option<DateTime<Utc>>,
}

impl BearerToken {
    /// A token whose expiry comes from its `exp` claim when it is a JWT.
    pub fn new(token: SecretString) -> Self {
        let expires = jwt_expiry(token.expose_secret());
        Self { token, expires }
    }

    /// The `Authorization` header value: `Bearer <token>`.
    pub fn authorization(&self) -> SecretString {
        let token = self.token.expose_secret();
        let mut value = String::with_capacity("Bearer ".len() + token.len());
        value.push_str("Bearer ");
        value.push_str(token);
        SecretString::from(value)
    }
}

/// The `exp` claim of a JWT (`header.payload.signature`, base64url), unverified. `None` when the
/// text is not a JWT or has no numeric `exp`.
fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let payload = payload.trim_end_matches('=');
    let mut decoded = Zeroizing::new(vec![0u8; payload.len()]);
    let len = base64ct::Base64UrlUnpadded::decode(payload, &mut decoded).ok()?.len();
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<serde_json::Number>,
    }
    let claims: Claims = serde_json::from_slice(&decoded[..len]).ok()?;
    let exp = claims.exp?;
    let seconds = exp.as_i64().or_else(|| exp.as_f64().map(|seconds| seconds as i64))?;
    DateTime::from_timestamp(seconds, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.c2lnbmF0dXJl",
            base64ct::Base64UrlUnpadded::encode_string(payload.as_bytes())
        )
    }

    #[test]
    fn exp_is_read_from_jwts_only() {
        assert_eq!(
            jwt_expiry(&jwt(r#"{"sub":"a","exp":1900000000}"#)).map(|at| at.timestamp()),
            Some(1_900_000_000)
        );
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"a"}"#)), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(jwt_expiry("opaque-token"), None);
        assert_eq!(jwt_expiry("a.b.c.d"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
    }
}
