//! Reaching the PostgreSQL server: the connection URL, TLS, one connection waiting out a full
//! server, and what a driver error means for a retry.

use std::str::FromStr;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Connection, Socket};
use zeroize::Zeroizing;

use super::postgres_tls::{RustlsConnector, RustlsStream, TlsMode, TlsSettings};
use crate::{Error, Result};

/// The notification channel of the store whose tables are in `schema`: writes notify it with
/// `revision id` as the payload. One channel per schema, so stores in different schemas of one
/// database do not hear each other; names are cut to fit PostgreSQL's 63-byte identifiers.
pub(crate) fn changes_channel(schema: &str) -> String {
    let mut end = schema.len().min(40);
    while !schema.is_char_boundary(end) {
        end -= 1;
    }
    format!("credential_changes/{}", &schema[..end])
}
/// How long establishing one connection may take (unless the URL says otherwise).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new connection waits for a server that refuses it for having too many clients (a
/// busy fleet's connections are given back within moments), trying again with a backoff from the
/// first pause to the longest.
const FULL_SERVER_WAIT: Duration = Duration::from_secs(5);
const FIRST_FULL_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_FULL_PAUSE: Duration = Duration::from_millis(250);

/// Where the server is and how to talk to it; read once from the URL.
pub(crate) struct Settings {
    config: Config,
    tls: RustlsConnector,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Config`'s own `Debug` hides the password; the hosts are enough to tell stores apart.
        f.debug_struct("Settings")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads a `postgres://` or `postgresql://` URL with libpq's parameters, `sslmode` (all five
    /// values) and `sslrootcert` among them. Errors never repeat the URL, which may hold a
    /// password.
    pub(crate) fn from_url(url: &str) -> Result<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::InvalidUrl {
                reason: "a PostgreSQL URL starts with `postgres://` or `postgresql://`",
            });
        }
        let (driver_url, tls) = split_tls_parameters(url)?;
        let mut config = Config::from_str(&driver_url).map_err(|_| Error::InvalidUrl {
            reason: "not a PostgreSQL connection URL (check the host, port and parameters)",
        })?;
        config.ssl_mode(tls.ssl_mode());
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("credential");
        }
        Ok(Self { config, tls: tls.connector()? })
    }

    /// One new connection named `application_name` (so operators can tell connections apart in
    /// `pg_stat_activity`); the caller drives the returned connection.
    ///
    /// A server that refuses for having too many clients (its `max_connections`, or a role's or
    /// database's connection limit) is tried again, with backoff, for up to
    /// [`FULL_SERVER_WAIT`]; its last refusal is then the (transient) error. Any other failure,
    /// a server that is away among them, is the error at once.
    pub(crate) async fn connect_raw(
        &self,
        application_name: Option<&str>,
    ) -> Result<(Client, Connection<Socket, RustlsStream<Socket>>)> {
        let mut config = self.config.clone();
        if let Some(name) = application_name {
            config.application_name(name);
        }
        let deadline = tokio::time::Instant::now() + FULL_SERVER_WAIT;
        let mut pause = FIRST_FULL_PAUSE;
        loop {
            match config.connect(self.tls.clone()).await {
                Ok(connected) => return Ok(connected),
                Err(error)
                    if error.code() == Some(&SqlState::TOO_MANY_CONNECTIONS)
                        && tokio::time::Instant::now() + pause < deadline =>
                {
                    if pause == FIRST_FULL_PAUSE {
                        crate::telemetry::server_full("postgres");
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_FULL_PAUSE);
                }
                Err(error) => return Err(storage(error)),
            }
        }
    }

    /// One new connection, driven by a task on the current runtime until it closes.
    pub(crate) async fn connect(&self) -> Result<Client> {
        let (client, connection) = self.connect_raw(None).await?;
        tokio::spawn(async move {
            // The driver ends when the connection closes; the client then reports it closed.
            let _ = connection.await;
        });
        Ok(client)
    }
}

/// Takes `sslmode` and `sslrootcert` out of the query string: the driver knows only three modes
/// and no CA file. The URL left for the driver holds the password: it is built in one buffer of
/// its final capacity and wiped when dropped.
fn split_tls_parameters(url: &str) -> Result<(Zeroizing<String>, TlsSettings)> {
    let mut settings = TlsSettings { mode: TlsMode::Prefer, root_cert: None };
    let mut driver_url = Zeroizing::new(String::with_capacity(url.len()));
    let Some((base, query)) = url.split_once('?') else {
        driver_url.push_str(url);
        return Ok((driver_url, settings));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = || {
            percent_decode_str(value).decode_utf8().map(|value| value.into_owned()).map_err(|_| {
                Error::InvalidUrl { reason: "a TLS parameter is not valid percent-encoded UTF-8" }
            })
        };
        match key {
            "sslmode" => settings.mode = TlsMode::parse(&decoded()?)?,
            "sslrootcert" => settings.root_cert = Some(decoded()?.into()),
            _ => kept.push(pair),
        }
    }
    driver_url.push_str(base);
    for (index, pair) in kept.into_iter().enumerate() {
        driver_url.push(if index == 0 { '?' } else { '&' });
        driver_url.push_str(pair);
    }
    Ok((driver_url, settings))
}

/// A driver error as a storage error, saying whether a retry can help: a lost or refused
/// connection, a server shutting down, a serialization failure or a deadlock can pass; a wrong
/// password, a missing table or a bad statement cannot.
pub(crate) fn storage(error: tokio_postgres::Error) -> Error {
    let transient = match error.code() {
        Some(code) => {
            let class = &code.code()[..2];
            matches!(class, "08" | "40" | "53" | "57") && *code != SqlState::QUERY_CANCELED
                || *code == SqlState::TOO_MANY_CONNECTIONS
        }
        // No server error: the connection broke, timed out or could not be made.
        None => true,
    };
    Error::storage("postgres", transient, DriverError::from(error))
}

/// A driver error that says why: the driver's own message is often just "error performing TLS
/// handshake" or "db error", with the reason (an unknown certificate issuer, the server's
/// message) in its causes, so the message carries the whole chain.
#[derive(Debug)]
struct DriverError {
    message: String,
    source: tokio_postgres::Error,
}

impl From<tokio_postgres::Error> for DriverError {
    fn from(source: tokio_postgres::Error) -> Self {
        let mut message = source.to_string();
        let mut cause = std::error::Error::source(&source);
        while let Some(error) = cause {
            let text = error.to_string();
            if !message.ends_with(&text) {
                message = format!("{message}: {text}");
            }
            cause = error.source();
        }
        Self { message, source }
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `text` as an SQL string literal.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` as an SQL identifier.
pub(crate) fn quote_identifier(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_is_kept() {
        let (url, tls) = split_tls_parameters(
            "postgres://u:p@db:5432/x?application_name=a&sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(*url, "postgres://u:p@db:5432/x?application_name=a&connect_timeout=3");
        assert_eq!(tls.mode, TlsMode::VerifyFull);
        assert_eq!(tls.root_cert.as_deref(), Some(std::path::Path::new("/ca.pem")));
        let (url, tls) = split_tls_parameters("postgres://db/x").unwrap();
        assert_eq!((url.as_str(), tls.mode), ("postgres://db/x", TlsMode::Prefer));
    }

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        for url in [
            "mysql://user:hunter2-canary@db/x",
            "postgres://user:hunter2-canary@db:notaport/x",
            "postgres://user:hunter2-canary@db/x?sslmode=hunter2-canary",
            "postgres://user:hunter2-canary@db/x?unknown_option=1",
        ] {
            let error = Settings::from_url(url).unwrap_err();
            assert!(matches!(error, Error::InvalidUrl { .. }), "{url}: {error:?}");
            assert!(!format!("{error} {error:?}").contains("hunter2"), "{url}");
        }
        let settings = Settings::from_url("postgres://user:hunter2-canary@db/x").unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
