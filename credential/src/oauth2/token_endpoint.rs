//! Requests to a token endpoint (RFC 6749 §3.2): the form, the client's authentication, the
//! answer (§5.1) and the refusals (§5.2), retried within a deadline.

use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::breaker::Breaker;
use crate::kinds::OAuth2Client;
use crate::{RefreshError, Result};

/// What `application/x-www-form-urlencoded` leaves as it is.
const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_');
/// The longest a single request may take, whatever the deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first pause between attempts, doubled after each up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The longest OAuth 2.0 error code quoted in an error.
const MAX_ERROR_CODE_LEN: usize = 64;

/// Which grant to ask for.
pub(crate) enum Grant<'a> {
    /// §6, with this refresh token.
    RefreshToken(&'a SecretString),
    /// §4.4, for these scopes.
    ClientCredentials(&'a [String]),
}

/// A token the endpoint issued (§5.1).
pub(crate) struct Issued {
    pub(crate) access_token: SecretString,
    pub(crate) refresh_token: Option<SecretString>,
    pub(crate) token_type: String,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) expires: Option<DateTime<Utc>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorResponse {
    error: String,
}

/// The HTTP client every token request goes through.
#[derive(Debug)]
pub(crate) struct TokenEndpoint {
    http: reqwest::Client,
}

impl TokenEndpoint {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self { http: crate::http::client(None)? })
    }

    /// Asks `client`'s token endpoint for `grant`, retrying transient failures with backoff until
    /// `deadline`, unless `breaker` refuses.
    pub(crate) async fn request_with_retries(
        &self,
        client: &OAuth2Client,
        grant: &Grant<'_>,
        breaker: &Breaker,
        deadline: Instant,
    ) -> Result<Issued, RefreshError> {
        let url = endpoint_url(&client.token_endpoint)?;
        let authorization = basic_authorization(client)?;
        let body = form(grant);
        let mut backoff = FIRST_BACKOFF;
        loop {
            if !breaker.admit(Instant::now()) {
                return Err(RefreshError::Unavailable {
                    reason: "the token endpoint's circuit breaker is open".to_owned(),
                });
            }
            let timeout = deadline.saturating_duration_since(Instant::now()).min(REQUEST_TIMEOUT);
            let attempt = self.request(&url, &authorization, &body, timeout).await;
            match attempt {
                Err(RefreshError::Unavailable { reason }) => {
                    breaker.failed(Instant::now());
                    if Instant::now() + backoff >= deadline {
                        return Err(RefreshError::Unavailable { reason });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                answered => {
                    breaker.answered();
                    return answered;
                }
            }
        }
    }

    async fn request(
        &self,
        url: &Url,
        authorization: &HeaderValue,
        body: &Zeroizing<String>,
        timeout: Duration,
    ) -> Result<Issued, RefreshError> {
        let sent_at = Utc::now();
        let response = self
            .http
            .post(url.clone())
            .header(AUTHORIZATION, authorization.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body.as_bytes().to_vec())
            .timeout(timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let bytes = Zeroizing::new(response.bytes().await.map_err(transport)?.to_vec());
        if status.is_success() {
            return issued(&bytes, sent_at);
        }
        Err(refusal(status, &bytes))
    }
}

/// The endpoint as a URL: `https`, or `http` to a loopback address (a provider on this machine).
fn endpoint_url(text: &str) -> Result<Url, RefreshError> {
    let invalid = |reason: &str| RefreshError::Failed { reason: reason.to_owned() };
    let url = Url::parse(text).map_err(|_| invalid("the token endpoint is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "the token endpoint holds credentials; keep them in the client secret",
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(invalid("the token endpoint must use https (http only to a loopback address)")),
    }
}

/// `client_secret_basic` (§2.3.1): both halves form-encoded, then Base64.
fn basic_authorization(client: &OAuth2Client) -> Result<HeaderValue, RefreshError> {
    let mut pair = Zeroizing::new(String::new());
    pair.extend(utf8_percent_encode(&client.client_id, FORM));
    pair.push(':');
    pair.extend(utf8_percent_encode(client.client_secret.expose_secret(), FORM));
    let mut header =
        Zeroizing::new(String::with_capacity(6 + Base64::encoded_len(pair.as_bytes())));
    header.push_str("Basic ");
    header.push_str(&Zeroizing::new(Base64::encode_string(pair.as_bytes())));
    let mut value = HeaderValue::from_str(&header).map_err(|_| RefreshError::Failed {
        reason: "the client credentials cannot be sent in a header".to_owned(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The request body for `grant`.
fn form(grant: &Grant<'_>) -> Zeroizing<String> {
    let mut body = Zeroizing::new(String::new());
    match grant {
        Grant::RefreshToken(token) => {
            body.push_str("grant_type=refresh_token&refresh_token=");
            body.extend(utf8_percent_encode(token.expose_secret(), FORM));
        }
        Grant::ClientCredentials(scopes) => {
            body.push_str("grant_type=client_credentials");
            if !scopes.is_empty() {
                body.push_str("&scope=");
                body.extend(utf8_percent_encode(&scopes.join(" "), FORM));
            }
        }
    }
    body
}

/// The token in a successful answer (§5.1), expiring `expires_in` after the request was sent.
fn issued(bytes: &[u8], sent_at: DateTime<Utc>) -> Result<Issued, RefreshError> {
    let response: TokenResponse =
        serde_json::from_slice(bytes).map_err(|_| RefreshError::Failed {
            reason: "the token endpoint's answer is not a token response".to_owned(),
        })?;
    let lifetime =
        |seconds: u64| chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
    Ok(Issued {
        access_token: response.access_token.into(),
        refresh_token: response.refresh_token.map(SecretString::from),
        token_type: response.token_type,
        scopes: response.scope.map(|scope| scope.split(' ').map(str::to_owned).collect()),
        expires: response
            .expires_in
            .and_then(|seconds| sent_at.checked_add_signed(lifetime(seconds))),
    })
}

/// What an unsuccessful answer means. Quotes the status or the OAuth 2.0 error code, never the
/// body.
fn refusal(status: StatusCode, bytes: &[u8]) -> RefreshError {
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return RefreshError::Unavailable {
            reason: format!("the token endpoint answered HTTP {}", status.as_u16()),
        };
    }
    match serde_json::from_slice::<ErrorResponse>(bytes) {
        Ok(refused) if refused.error == "invalid_grant" => RefreshError::InvalidGrant,
        Ok(refused) => RefreshError::Failed {
            reason: format!(
                "the token endpoint refused the request: `{}`",
                error_code(&refused.error)
            ),
        },
        Err(_) => RefreshError::Failed {
            reason: format!("the token endpoint answered HTTP {}", status.as_u16()),
        },
    }
}

/// An OAuth 2.0 error code as it may be quoted: the characters §5.2 allows, bounded.
fn error_code(code: &str) -> String {
    code.chars()
        .filter(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        .take(MAX_ERROR_CODE_LEN)
        .collect()
}

/// A transport failure, described without the URL.
fn transport(error: reqwest::Error) -> RefreshError {
    let what = crate::http::unanswered(&error);
    RefreshError::Unavailable { reason: format!("the token endpoint {what}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secret: &str) -> OAuth2Client {
        OAuth2Client {
            token_endpoint: "https://auth.example/token".to_owned(),
            client_id: "engine one".to_owned(),
            client_secret: secret.into(),
            scopes: vec![],
        }
    }

    #[test]
    fn the_client_is_form_encoded_before_base64_and_the_header_is_sensitive() {
        let header = basic_authorization(&client("p@ss:w rd")).unwrap();
        assert!(header.is_sensitive());
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = Base64::decode_vec(encoded).unwrap();
        assert_eq!(decoded, b"engine%20one:p%40ss%3Aw%20rd");
    }

    #[test]
    fn forms_for_both_grants() {
        let token = SecretString::from("a+b/c=");
        assert_eq!(
            form(&Grant::RefreshToken(&token)).as_str(),
            "grant_type=refresh_token&refresh_token=a%2Bb%2Fc%3D"
        );
        let scopes = ["api".to_owned(), "read:all".to_owned()];
        assert_eq!(
            form(&Grant::ClientCredentials(&scopes)).as_str(),
            "grant_type=client_credentials&scope=api%20read%3Aall"
        );
        assert_eq!(form(&Grant::ClientCredentials(&[])).as_str(), "grant_type=client_credentials");
    }

    #[test]
    fn only_https_or_loopback_http_endpoints_without_credentials() {
        assert!(endpoint_url("https://auth.example/token").is_ok());
        assert!(endpoint_url("http://127.0.0.1:8080/token").is_ok());
        assert!(endpoint_url("http://[::1]/token").is_ok());
        assert!(endpoint_url("http://localhost/token").is_ok());
        for refused in
            ["http://auth.example/token", "ftp://x/", "not a url", "https://u:p@a.example/"]
        {
            assert!(matches!(endpoint_url(refused), Err(RefreshError::Failed { .. })), "{refused}");
        }
    }

    #[test]
    fn refusals_name_the_status_or_the_code_never_the_body() {
        let canary = "canary-3f9c";
        let body = format!(r#"{{"error":"invalid_grant","error_description":"{canary}"}}"#);
        assert!(matches!(
            refusal(StatusCode::BAD_REQUEST, body.as_bytes()),
            RefreshError::InvalidGrant
        ));
        let body =
            format!(r#"{{"error":"invalid_client\n{canary}","error_description":"{canary}"}}"#);
        let refused = refusal(StatusCode::UNAUTHORIZED, body.as_bytes());
        assert!(
            matches!(&refused, RefreshError::Failed { reason } if reason.contains("invalid_client"))
        );
        let body = format!("<html>{canary}</html>");
        for status in [StatusCode::BAD_GATEWAY, StatusCode::TOO_MANY_REQUESTS] {
            let refused = refusal(status, body.as_bytes());
            assert!(matches!(&refused, RefreshError::Unavailable { .. }), "{status}");
            assert!(!refused.to_string().contains(canary));
        }
        let refused = refusal(StatusCode::FOUND, body.as_bytes());
        assert_eq!(refused.to_string(), "the token endpoint answered HTTP 302");
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(1000));
        assert!(refusal(StatusCode::BAD_REQUEST, long.as_bytes()).to_string().len() < 200);
    }

    #[test]
    fn a_token_answer_expires_from_when_the_request_was_sent() {
        let sent_at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let body =
            br#"{"access_token":"at","token_type":"Bearer","expires_in":5,"scope":"openid api"}"#;
        let token = issued(body, sent_at).unwrap();
        assert_eq!(token.expires, Some(sent_at + chrono::Duration::seconds(5)));
        assert_eq!(token.scopes, Some(vec!["openid".to_owned(), "api".to_owned()]));
        assert!(token.refresh_token.is_none());
        assert!(matches!(issued(b"{}", sent_at), Err(RefreshError::Failed { .. })));
    }
}
