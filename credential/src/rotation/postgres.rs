//! [`PostgresRotator`]: rotates the password of a PostgreSQL role that a `kinds::Database`
//! credential logs in as, with AWS Secrets Manager's two strategies.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{RotationContext, RotationError, Rotator};
use crate::kinds::Database;
use crate::store::postgres_connection::{quote_identifier, quote_literal};

/// How many characters a new password has: 32 from 62, about 190 bits.
const PASSWORD_LEN: usize = 32;
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// What the alternating strategy appends to a role's name for its twin.
const CLONE_SUFFIX: &str = "_clone";

/// Which roles a rotation changes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordStrategy {
    /// The credential's own role changes its own password (`ALTER ROLE CURRENT_USER`): no
    /// privilege beyond logging in. New connections need the new password from the moment it is
    /// set; sessions already open live on. A connection begun with the old value between the
    /// set and the commit fails to authenticate.
    SingleUser,
    /// Two roles, `name` and `name_clone`, both able to log in with the same privileges: each
    /// rotation sets a new password on the role not in service and switches the credential to
    /// it, so the value served is always valid. The old role keeps its password until the next
    /// rotation. `admin` is the id of a `Database` credential of this manager whose role may
    /// `ALTER ROLE` both (`CREATEROLE`).
    AlternatingUsers {
        /// The id of the administrator's credential.
        admin: String,
    },
}

/// Rotates `kinds::Database` credentials for PostgreSQL: a new random password (32 letters and
/// digits from the OS random source), sent to the server already hashed as SCRAM-SHA-256, so the
/// server never sees, logs or keeps it in plain text.
///
/// Privileges, least first: [`PasswordStrategy::SingleUser`] needs none beyond `LOGIN` (a role
/// may always change its own password); [`PasswordStrategy::AlternatingUsers`] needs an
/// administrator with `CREATEROLE` (on PostgreSQL 16 and later, with `ADMIN OPTION` on the two
/// roles), and both roles created beforehand, for example:
///
/// ```sql
/// CREATE ROLE app LOGIN;  CREATE ROLE app_clone LOGIN IN ROLE app;
/// ```
///
/// ```no_run
/// use credential::rotation::{PostgresRotator, RotationPolicy};
/// use credential::{KeyRing, Manager, MemoryStore};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> credential::Result<()> {
/// let manager = Manager::builder()
///     .store(MemoryStore::new())
///     .key_ring(KeyRing::generate()?)
///     .rotator(PostgresRotator::single_user())
///     .rotation_policy(RotationPolicy::new("db/*").every(Duration::from_secs(7 * 24 * 3600)))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresRotator {
    strategy: PasswordStrategy,
}

impl PostgresRotator {
    /// Each credential's role changes its own password.
    pub fn single_user() -> Self {
        Self { strategy: PasswordStrategy::SingleUser }
    }

    /// Each credential alternates between its role and its `_clone` twin, whose passwords the
    /// role of credential `admin` changes.
    pub fn alternating_users(admin: &str) -> Self {
        Self { strategy: PasswordStrategy::AlternatingUsers { admin: admin.to_owned() } }
    }

    /// The strategy it follows.
    pub fn strategy(&self) -> &PasswordStrategy {
        &self.strategy
    }
}

#[async_trait]
impl Rotator for PostgresRotator {
    type Credential = Database;

    async fn create(
        &self,
        current: &Database,
        _context: &RotationContext,
    ) -> Result<Database, RotationError> {
        let user = match self.strategy {
            PasswordStrategy::SingleUser => current.user.clone(),
            PasswordStrategy::AlternatingUsers { .. } => twin(&current.user),
        };
        Ok(Database {
            driver: current.driver.clone(),
            host: current.host.clone(),
            port: current.port,
            database: current.database.clone(),
            user,
            password: new_password()?,
            tls_mode: current.tls_mode.clone(),
            options: current.options.clone(),
        })
    }

    async fn set(
        &self,
        current: &Database,
        next: &Database,
        context: &RotationContext,
    ) -> Result<(), RotationError> {
        let verifier = Zeroizing::new(postgres_protocol::password::scram_sha_256(
            next.password.expose_secret().as_bytes(),
        ));
        match &self.strategy {
            PasswordStrategy::SingleUser => {
                let client = match connect(current).await {
                    Ok(client) => client,
                    // A run that stopped after the change left `next` in force: nothing to do.
                    Err(refused) if !refused.is_transient() => {
                        return connect(next).await.map(drop).map_err(|_| refused);
                    }
                    Err(error) => return Err(error),
                };
                let statement = Zeroizing::new(format!(
                    "ALTER ROLE CURRENT_USER PASSWORD {}",
                    quote_literal(&verifier)
                ));
                client.batch_execute(&statement).await.map_err(failed)
            }
            PasswordStrategy::AlternatingUsers { admin } => {
                let admin = context.credential::<Database>(admin).await?;
                let client = connect(&admin).await?;
                let statement = Zeroizing::new(format!(
                    "ALTER ROLE {} PASSWORD {}",
                    quote_identifier(&next.user),
                    quote_literal(&verifier)
                ));
                client.batch_execute(&statement).await.map_err(failed)
            }
        }
    }

    async fn test(&self, next: &Database, _context: &RotationContext) -> Result<(), RotationError> {
        let client = connect(next).await?;
        client.simple_query("SELECT 1").await.map(drop).map_err(failed)
    }
}

/// The other role of an alternating pair.
fn twin(user: &str) -> String {
    match user.strip_suffix(CLONE_SUFFIX) {
        Some(base) => base.to_owned(),
        None => format!("{user}{CLONE_SUFFIX}"),
    }
}

/// A new password from the OS random source, each character drawn without bias.
fn new_password() -> Result<SecretString, RotationError> {
    let mut password = Zeroizing::new(String::with_capacity(PASSWORD_LEN));
    let mut random = Zeroizing::new([0u8; 64]);
    while password.len() < PASSWORD_LEN {
        getrandom::fill(&mut *random).map_err(|_| RotationError::Unavailable {
            reason: "the OS random source is unavailable".to_owned(),
        })?;
        // 62 * 4 = 248: bytes from 248 up would favour the first letters.
        for byte in random.iter().filter(|byte| **byte < 248) {
            if password.len() == PASSWORD_LEN {
                break;
            }
            password.push(char::from(PASSWORD_ALPHABET[usize::from(*byte) % 62]));
        }
    }
    Ok(SecretString::from(password.as_str()))
}

/// A connection as `database`'s role.
async fn connect(database: &Database) -> Result<tokio_postgres::Client, RotationError> {
    Ok(database.connect_postgres().await?)
}

/// A statement's failure: transient if the server says a retry may help.
fn failed(error: tokio_postgres::Error) -> RotationError {
    RotationError::from(crate::store::postgres_connection::storage(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternating_roles_pair_up_both_ways() {
        assert_eq!(twin("app"), "app_clone");
        assert_eq!(twin("app_clone"), "app");
    }

    #[test]
    fn new_passwords_are_long_and_different() {
        let (first, second) = (new_password().unwrap(), new_password().unwrap());
        assert_eq!(first.expose_secret().len(), PASSWORD_LEN);
        assert!(first.expose_secret().bytes().all(|byte| PASSWORD_ALPHABET.contains(&byte)));
        assert_ne!(first.expose_secret(), second.expose_secret());
    }
}
