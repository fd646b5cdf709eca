//! Database connection credentials, to and from connection URLs.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

use super::database_url;
use crate::rules::RuleError;
use crate::{self as credential, Error, Result};

/// Everything but RFC 3986's unreserved characters is percent-encoded in user, password and
/// database name, so any text survives the round trip.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Connection details for PostgreSQL or MySQL.
///
/// [`Database::from_url`] and [`Database::url`] convert from and to connection URLs
/// (`postgresql://user:password@host:5432/db?sslmode=require`), percent-decoding and -encoding user,
/// password and database name so that any characters round-trip. The TLS mode travels as
/// `sslmode` (PostgreSQL) or `ssl-mode` (MySQL); a `password` query parameter fills the password;
/// other query parameters are kept in `options`, which are not secret, so other secret parameters
/// (`sslpassword`, ...) are refused.
///
/// ```
/// use credential::kinds::Database;
/// use credential::ExposeSecret;
///
/// # fn main() -> credential::Result<()> {
/// let db = Database::from_url("postgres://app:p%40ss%3Aw0rd@db.internal/orders?sslmode=require")?;
/// assert_eq!((db.user.as_str(), db.port, db.tls_mode.as_deref()), ("app", 5432, Some("require")));
/// assert_eq!(db.password.expose_secret(), "p@ss:w0rd");
/// assert_eq!(db.url().expose_secret(), "postgresql://app:p%40ss%3Aw0rd@db.internal:5432/orders?sslmode=require");
/// # Ok(())
/// # }
/// ```
#[derive(credential::Credential)]
#[credential(kind = "database", crate = "crate")]
pub struct Database {
    /// `postgresql` or `mysql`.
    #[credential(validate(custom = supported_driver))]
    pub driver: String,
    /// Host name or IP address.
    #[credential(validate(non_empty, length(max = 253)))]
    pub host: String,
    /// TCP port.
    #[credential(validate(range(min = 1)))]
    pub port: u16,
    /// Database name.
    pub database: String,
    /// User name.
    #[credential(validate(non_empty))]
    pub user: String,
    /// Password.
    #[secret]
    pub password: SecretString,
    /// TLS mode (`disable`, `require`, `verify-full`, ...), if set.
    pub tls_mode: Option<String>,
    /// Other connection options.
    #[credential(default)]
    pub options: BTreeMap<String, String>,
}

fn supported_driver(driver: &str) -> std::result::Result<(), RuleError> {
    match driver {
        "postgresql" | "mysql" => Ok(()),
        _ => Err(RuleError::new("must be `postgresql` or `mysql`")),
    }
}

fn decode(text: &str, what: &'static str) -> Result<String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| Error::InvalidUrl { reason: what })
}

impl Database {
    /// The driver a URL scheme or a common spelling names (`postgres` and `postgresql`,
    /// `mysql` and `mariadb`), as this kind stores it: `postgresql` or `mysql`.
    ///
    /// ```
    /// use credential::kinds::Database;
    ///
    /// assert_eq!(Database::driver_named("postgres"), Some("postgresql"));
    /// assert_eq!(Database::driver_named("mariadb"), Some("mysql"));
    /// assert_eq!(Database::driver_named("redis"), None);
    /// ```
    pub fn driver_named(name: &str) -> Option<&'static str> {
        match name {
            "postgres" | "postgresql" => Some("postgresql"),
            "mysql" | "mariadb" => Some("mysql"),
            _ => None,
        }
    }

    /// The default port of `driver`.
    pub fn default_port(driver: &str) -> Option<u16> {
        match driver {
            "postgresql" => Some(5432),
            "mysql" => Some(3306),
            _ => None,
        }
    }

    fn tls_parameter(&self) -> &'static str {
        if self.driver == "mysql" { "ssl-mode" } else { "sslmode" }
    }

    /// Reads a `postgres://`, `postgresql://`, `mysql://` or `mariadb://` URL.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] saying what is missing or malformed (never echoing the URL).
    pub fn from_url(url: &str) -> Result<Self> {
        // The password is taken out first: the URL parser only ever sees the rest.
        let scrubbed = database_url::scrub(url);
        let parsed = url::Url::parse(&scrubbed.public)
            .map_err(|_| Error::InvalidUrl { reason: "not a URL" })?;
        let driver = Self::driver_named(parsed.scheme())
            .ok_or(Error::InvalidUrl { reason: "scheme must be postgresql or mysql" })?;
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or(Error::InvalidUrl { reason: "no host" })?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = parsed.port().or_else(|| Self::default_port(driver)).unwrap_or_default();
        let user = decode(parsed.username(), "user is not valid percent-encoded UTF-8")?;
        if user.is_empty() {
            return Err(Error::InvalidUrl { reason: "no user" });
        }
        let password = match (scrubbed.userinfo_password, scrubbed.query_password) {
            (Some(userinfo), Some(_)) if !userinfo.is_empty() => {
                return Err(Error::InvalidUrl { reason: "the password is given twice" });
            }
            (_, Some(query)) => database_url::decode_password(query, true)?,
            (Some(userinfo), None) => database_url::decode_password(userinfo, false)?,
            (None, None) => SecretString::from(String::new()),
        };
        let database = decode(
            parsed.path().trim_start_matches('/'),
            "database name is not valid percent-encoded UTF-8",
        )?;
        if scrubbed.other_secret {
            return Err(Error::InvalidUrl {
                reason: "secret query parameters other than `password` are not supported: options are not secret",
            });
        }
        let tls_key = if driver == "mysql" { "ssl-mode" } else { "sslmode" };
        let mut tls_mode = None;
        let mut options = BTreeMap::new();
        for (key, value) in parsed.query_pairs() {
            if key == tls_key {
                tls_mode = Some(value.into_owned());
            } else {
                options.insert(key.into_owned(), value.into_owned());
            }
        }
        Ok(Self {
            driver: driver.to_owned(),
            host,
            port,
            database,
            user,
            password,
            tls_mode,
            options,
        })
    }

    /// The connection URL, with user, password and database name percent-encoded. Built at its
    /// final size, so no partial copy of the password is left behind.
    pub fn url(&self) -> SecretString {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let mut query: Vec<(String, String)> = Vec::new();
        if let Some(mode) = &self.tls_mode {
            query.push((self.tls_parameter().to_owned(), mode.clone()));
        }
        query.extend(self.options.iter().map(|(key, value)| (key.clone(), value.clone())));
        let query: String =
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
        let before_password =
            format!("{}://{}:", self.driver, utf8_percent_encode(&self.user, COMPONENT));
        let after_password = format!(
            "@{host}:{}/{}{}{query}",
            self.port,
            utf8_percent_encode(&self.database, COMPONENT),
            if query.is_empty() { "" } else { "?" }
        );
        let password = utf8_percent_encode(self.password.expose_secret(), COMPONENT);
        let password_len: usize = password.clone().map(str::len).sum();
        let mut url =
            String::with_capacity(before_password.len() + password_len + after_password.len());
        url.push_str(&before_password);
        password.for_each(|chunk| url.push_str(chunk));
        url.push_str(&after_password);
        SecretString::from(url)
    }
}

#[cfg(feature = "postgres")]
impl Database {
    /// A connection to the PostgreSQL server as this credential's role, with the TLS its
    /// `sslmode` asks for (`sslrootcert` honoured), driven by a task on the current runtime until
    /// it closes.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a credential that is not a PostgreSQL URL, or
    /// [`Error::Storage`](crate::Error::Storage) when the server cannot be reached or refuses the
    /// login (transient when a retry may help). Never repeats the password.
    pub async fn connect_postgres(&self) -> Result<tokio_postgres::Client> {
        let settings =
            crate::store::postgres_connection::Settings::from_url(self.url().expose_secret())?;
        settings.connect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Credential;

    #[test]
    fn awkward_passwords_round_trip() {
        for password in
            ["p@ss:w/rd?#%", "ünïcödé ✓ 密码", "%41", "", "a+b=c&d", " leading and trailing "]
        {
            let db = Database {
                driver: "postgresql".into(),
                host: "db.internal".into(),
                port: 6543,
                database: "orders/2026 q4".into(),
                user: "app@prod".into(),
                password: password.into(),
                tls_mode: Some("verify-full".into()),
                options: BTreeMap::from([("application_name".into(), "billing & co".into())]),
            };
            let url = db.url();
            let back = Database::from_url(url.expose_secret()).unwrap();
            assert_eq!(back.password.expose_secret(), password, "{}", url.expose_secret());
            assert_eq!(
                (back.user.as_str(), back.database.as_str(), back.port),
                ("app@prod", "orders/2026 q4", 6543)
            );
            assert_eq!(back.tls_mode.as_deref(), Some("verify-full"));
            assert_eq!(back.options, db.options);
        }
    }

    #[test]
    fn mysql_urls_use_their_tls_parameter_and_default_port() {
        let db = Database::from_url(
            "mariadb://root:secret@[::1]/shop?ssl-mode=REQUIRED&charset=utf8mb4",
        )
        .unwrap();
        assert_eq!((db.driver.as_str(), db.host.as_str(), db.port), ("mysql", "::1", 3306));
        assert_eq!(db.tls_mode.as_deref(), Some("REQUIRED"));
        assert_eq!(
            db.url().expose_secret(),
            "mysql://root:secret@[::1]:3306/shop?ssl-mode=REQUIRED&charset=utf8mb4"
        );
        db.validate().unwrap();
    }

    #[test]
    fn a_password_in_the_query_goes_to_the_password_field_never_to_options() {
        let db =
            Database::from_url("postgresql://app@db/orders?password=p%40ss&application_name=x")
                .unwrap();
        assert_eq!(db.password.expose_secret(), "p@ss");
        assert_eq!(db.options, BTreeMap::from([("application_name".to_owned(), "x".to_owned())]));
        assert!(!format!("{db:?} {}", db.redacted()).contains("p@ss"));
        for url in [
            "postgresql://app:one@db/orders?password=two",
            "postgresql://app@db/o?sslpassword=hunter2",
        ] {
            let error =
                Database::from_url(url).err().map(|error| error.to_string()).unwrap_or_default();
            assert!(
                error.starts_with("invalid connection URL") && !error.contains("hunter2"),
                "{error}"
            );
        }
    }

    #[test]
    fn bad_urls_are_errors_that_never_echo_the_url() {
        for (url, reason) in [
            ("not a url", "not a URL"),
            ("redis://u:hunter2@host/0", "scheme must be postgresql or mysql"),
            ("postgresql://hunter2@/db", "not a URL"),
            ("postgresql:///db", "no host"),
            ("postgresql://:hunter2@host/db", "no user"),
            ("postgresql://u:%FF%FE@host/db", "password is not valid percent-encoded UTF-8"),
        ] {
            let error =
                Database::from_url(url).err().map(|error| error.to_string()).unwrap_or_default();
            assert_eq!(error, format!("invalid connection URL: {reason}"), "{url}");
            assert!(!error.contains("hunter2"));
        }
    }
}
