//! Calls to a Vault-compatible server (HashiCorp Vault, OpenBao): authentication (a token, or an
//! AppRole login renewed when the server stops honouring its token), the namespace header, and
//! what each failure means: a sealed server, a refused token, a missing mount, an unreachable
//! server. Errors quote the server's own error message, bounded; never a token, never data.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::{Error, Result};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest server message quoted in an error.
const MAX_MESSAGE_LEN: usize = 200;

/// How the client proves who it is.
#[derive(Clone)]
pub(crate) enum Auth {
    /// A token issued out of band.
    Token(SecretString),
    /// An AppRole login at `mount` (usually `approle`).
    AppRole { mount: String, role_id: String, secret_id: SecretString },
}

/// A failure the server reported, or the lack of an answer.
#[derive(Debug)]
pub(crate) struct VaultError {
    status: Option<u16>,
    message: String,
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "HTTP {status}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for VaultError {}

/// What a call found.
pub(crate) enum Answer {
    /// A JSON body (`Value::Null` for an empty one).
    Found(Value),
    /// 404 with no error message: the path holds nothing.
    Absent,
    /// 400 naming a failed check-and-set.
    CasMismatch,
}

pub(crate) struct VaultClient {
    http: reqwest::Client,
    address: Url,
    namespace: Option<HeaderValue>,
    auth: Auth,
    token: RwLock<Option<Arc<HeaderValue>>>,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.address.as_str())
            .finish_non_exhaustive()
    }
}

impl VaultClient {
    pub(crate) fn new(
        http: reqwest::Client,
        address: &str,
        namespace: Option<&str>,
        auth: Auth,
    ) -> Result<Self> {
        let mut address = Url::parse(address)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.password().is_none())
            .ok_or(Error::Config { reason: "the Vault address is not an http(s) URL" })?;
        // Paths are joined below the address, so it must end in a slash.
        if !address.path().ends_with('/') {
            let path = format!("{}/", address.path());
            address.set_path(&path);
        }
        let namespace = namespace.map(HeaderValue::from_str).transpose().map_err(|_| {
            Error::Config { reason: "the Vault namespace cannot be sent in a header" }
        })?;
        let token = match &auth {
            Auth::Token(token) => Some(Arc::new(token_header(token)?)),
            Auth::AppRole { .. } => None,
        };
        Ok(Self { http, address, namespace, auth, token: RwLock::new(token) })
    }

    /// `method` on `/v1/{path}` with `body`. With AppRole, a refused token is replaced by a new
    /// login once.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer> {
        let token = self.token().await?;
        match self.send(&method, path, body, Some(&token)).await {
            Err(refused) if self.renewable(&refused) => {
                let token = self.login().await?;
                self.send(&method, path, body, Some(&token)).await
            }
            answered => answered,
        }
    }

    /// A call that needs no token (`sys/health`).
    pub(crate) async fn call_anonymous(&self, path: &str) -> Result<Answer> {
        self.send(&Method::GET, path, None, None).await
    }

    fn renewable(&self, error: &Error) -> bool {
        let refused = matches!(error, Error::Storage { source, .. }
            if source.downcast_ref::<VaultError>().is_some_and(|error| error.status == Some(403)));
        refused && matches!(self.auth, Auth::AppRole { .. })
    }

    async fn token(&self) -> Result<Arc<HeaderValue>> {
        let current = self.token.read().unwrap_or_else(PoisonError::into_inner).clone();
        match current {
            Some(token) => Ok(token),
            None => self.login().await,
        }
    }

    /// Logs in with the AppRole and keeps the token it gets.
    async fn login(&self) -> Result<Arc<HeaderValue>> {
        let Auth::AppRole { mount, role_id, secret_id } = &self.auth else {
            return Err(storage(false, None, "the token was refused"));
        };
        let body =
            serde_json::json!({ "role_id": role_id, "secret_id": secret_id.expose_secret() });
        let path = format!("auth/{mount}/login");
        let Answer::Found(answer) = self.send(&Method::POST, &path, Some(&body), None).await?
        else {
            return Err(storage(false, None, "the AppRole login found no such role"));
        };
        let token = answer["auth"]["client_token"]
            .as_str()
            .ok_or_else(|| storage(false, None, "the AppRole login returned no token"))?;
        let token = Arc::new(token_header(&SecretString::from(token))?);
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&token));
        Ok(token)
    }

    async fn send(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&HeaderValue>,
    ) -> Result<Answer> {
        let url = self
            .address
            .join(&format!("v1/{path}"))
            .map_err(|_| storage(false, None, "the request path is not a valid URL"))?;
        let mut request = self.http.request(method.clone(), url).timeout(REQUEST_TIMEOUT);
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token.clone());
        }
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace.clone());
        }
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(body.to_string());
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        let json: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|_| storage(false, Some(status), "the answer is not JSON"))?
        };
        if status.is_success() {
            return Ok(Answer::Found(json));
        }
        let message = json["errors"][0].as_str().map(bounded);
        match (status, message) {
            (StatusCode::NOT_FOUND, None) => Ok(Answer::Absent),
            (StatusCode::BAD_REQUEST, Some(message)) if message.contains("check-and-set") => {
                Ok(Answer::CasMismatch)
            }
            (status, message) => Err(refusal(status, message)),
        }
    }
}

fn token_header(token: &SecretString) -> Result<HeaderValue> {
    let mut header = HeaderValue::from_str(token.expose_secret())
        .map_err(|_| Error::Config { reason: "the Vault token cannot be sent in a header" })?;
    header.set_sensitive(true);
    Ok(header)
}

/// What a refusal means, and whether trying again can help.
fn refusal(status: StatusCode, message: Option<String>) -> Error {
    let said = message.as_deref().unwrap_or("no message");
    let sealed = said.contains("sealed");
    // A KV mount enabled a moment ago answers so until it has set itself up.
    let upgrading = said.contains("Upgrading from non-versioned to versioned data");
    let (transient, meaning) = match status.as_u16() {
        _ if sealed => (true, "the server is sealed; unseal it".to_owned()),
        _ if upgrading => (true, "the KV mount is still being set up; try again".to_owned()),
        403 => (
            false,
            format!(
                "permission denied: the token is invalid or expired, or its policy does not allow this ({said})"
            ),
        ),
        404 => (false, format!("no such mount or path ({said})")),
        429 | 500..=599 => (true, said.to_owned()),
        _ => (false, said.to_owned()),
    };
    storage(transient, Some(status), &meaning)
}

fn storage(transient: bool, status: Option<StatusCode>, message: &str) -> Error {
    let error =
        VaultError { status: status.map(|status| status.as_u16()), message: message.to_owned() };
    Error::Storage { backend: "vault", transient, source: Arc::new(error) }
}

/// A transport failure, described without the URL.
fn transport(error: reqwest::Error) -> Error {
    storage(true, None, &format!("the server {}", crate::http::unanswered(&error)))
}

/// A server message as it may be quoted: printable, bounded.
fn bounded(message: &str) -> String {
    message.chars().filter(|c| !c.is_control()).take(MAX_MESSAGE_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_they_mean_and_whether_to_retry() {
        let sealed = refusal(StatusCode::SERVICE_UNAVAILABLE, Some("Vault is sealed".to_owned()));
        assert!(sealed.is_transient());
        assert!(sealed.to_string().contains("sealed"), "{sealed}");
        let denied = refusal(StatusCode::FORBIDDEN, Some("permission denied".to_owned()));
        assert!(!denied.is_transient());
        assert!(denied.to_string().contains("token is invalid"), "{denied}");
        let mount = refusal(StatusCode::NOT_FOUND, Some("no handler for route".to_owned()));
        assert!(mount.to_string().contains("no such mount"), "{mount}");
        assert!(refusal(StatusCode::TOO_MANY_REQUESTS, None).is_transient());
        assert!(!refusal(StatusCode::BAD_REQUEST, None).is_transient());
        let upgrading = "Upgrading from non-versioned to versioned data. This backend will be \
                         unavailable for a brief period and will resume service shortly.";
        assert!(refusal(StatusCode::BAD_REQUEST, Some(upgrading.to_owned())).is_transient());
        assert_eq!(bounded(&"x\n".repeat(500)).len(), MAX_MESSAGE_LEN);
    }

    #[test]
    fn only_http_addresses_without_a_password() {
        let http = crate::http::client(None).unwrap();
        let token = || Auth::Token("t".into());
        assert!(VaultClient::new(http.clone(), "http://127.0.0.1:8200", None, token()).is_ok());
        for refused in ["ftp://vault/", "not a url", "https://u:p@vault/"] {
            assert!(VaultClient::new(http.clone(), refused, None, token()).is_err(), "{refused}");
        }
        assert!(VaultClient::new(http, "http://v/", None, Auth::Token("a\nb".into())).is_err());
    }
}
