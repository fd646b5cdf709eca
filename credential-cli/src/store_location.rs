//! Where the credentials are: a store URL parsed, opened, and the files kept beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use credential::audit::{AuditSink, JsonlAuditSink};
use credential::store::{FileStore, Store};
use credential::{Error, SqliteStore};

use crate::exit::{Failure, Outcome, Status};

/// A parsed `--store` URL.
#[derive(Debug, Clone)]
pub(crate) enum StoreLocation {
    Sqlite(PathBuf),
    Files(PathBuf),
    /// A PostgreSQL URL and, when it names a pooler in transaction mode, the server behind it.
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        server: Option<String>,
    },
}

/// An opened store and the audit trail that goes with it.
#[derive(Clone)]
pub(crate) struct OpenedStore {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) audit: Arc<dyn AuditSink>,
    /// The JSONL trail, when that is where the audit goes (it can be verified).
    pub(crate) trail: Option<JsonlAuditSink>,
}

impl StoreLocation {
    /// Reads `sqlite:PATH`, `file:DIR` or `postgres://...` (`sqlite://` and `file://` too);
    /// `behind_pooler` is the server behind a PostgreSQL URL that names a pooler.
    pub(crate) fn parse(text: &str, behind_pooler: Option<&str>) -> Outcome<Self> {
        if behind_pooler.is_some()
            && !(text.starts_with("postgres://") || text.starts_with("postgresql://"))
        {
            return Err(Failure::usage("--behind-pooler applies to a postgres:// store only"));
        }
        let path = |rest: &str| {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            if rest.is_empty() {
                Err(Failure::usage("the store URL names no path"))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        if let Some(rest) = text.strip_prefix("sqlite:") {
            return Ok(Self::Sqlite(path(rest)?));
        }
        if let Some(rest) = text.strip_prefix("file:") {
            return Ok(Self::Files(path(rest)?));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Ok(Self::Postgres {
                url: text.to_owned(),
                server: behind_pooler.map(str::to_owned),
            });
            #[cfg(not(feature = "postgres"))]
            return Err(Failure::usage(
                "this `cred` was built without PostgreSQL support (feature `postgres`)",
            ));
        }
        Err(Failure::usage(
            "unrecognized store URL: expected sqlite:PATH, file:DIR or postgres://...",
        ))
    }

    /// The store, for messages: never a password.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("SQLite database {}", path.display()),
            Self::Files(dir) => format!("file store {}", dir.display()),
            #[cfg(feature = "postgres")]
            Self::Postgres { .. } => "PostgreSQL database".to_owned(),
        }
    }

    /// Where the JSONL audit trail goes unless `--audit-file` says otherwise; `None` for a store
    /// that keeps the trail in a table.
    pub(crate) fn default_trail(&self) -> Option<PathBuf> {
        match self {
            Self::Sqlite(path) => Some(beside(path, "audit.jsonl")),
            Self::Files(dir) => Some(dir.join("audit.jsonl")),
            #[cfg(feature = "postgres")]
            Self::Postgres { .. } => None,
        }
    }

    /// Where a passphrase key's salt and cost are kept unless `--kdf-file` says otherwise.
    pub(crate) fn default_kdf_file(&self) -> Option<PathBuf> {
        match self {
            Self::Sqlite(path) => Some(beside(path, "kdf")),
            Self::Files(dir) => Some(dir.join("passphrase.kdf")),
            #[cfg(feature = "postgres")]
            Self::Postgres { .. } => None,
        }
    }

    /// Creates the store (`cred init`, the only command that does): its directory `0700` when
    /// missing, then the database or the store's directory itself. An existing store is kept.
    pub(crate) async fn create(&self) -> Outcome {
        self.create_directory()?;
        match self {
            Self::Sqlite(path) => drop(SqliteStore::open(path).await?),
            Self::Files(dir) => drop(FileStore::open(dir).await?),
            #[cfg(feature = "postgres")]
            Self::Postgres { .. } => {}
        }
        Ok(())
    }

    /// Refuses a store that does not exist, so that a mistyped path is an error rather than a
    /// new, empty store (a secret written there would be lost to whoever looks in the right
    /// one). A PostgreSQL store is the server's to know: its tables are made on first connect.
    fn check_exists(&self) -> Outcome {
        let missing = match self {
            Self::Sqlite(path) => !path.exists(),
            Self::Files(dir) => !dir.exists(),
            #[cfg(feature = "postgres")]
            Self::Postgres { .. } => false,
        };
        if missing {
            return Err(Failure::new(
                Status::StoreUnavailable,
                "no_store",
                format!("there is no {}: `cred init` creates it", self.describe()),
            ));
        }
        Ok(())
    }

    /// The directory the store lives in (created `0700` when missing, as the file store does).
    fn create_directory(&self) -> Outcome {
        let dir = match self {
            Self::Sqlite(path) => path.parent().map(Path::to_owned),
            Self::Files(dir) => Some(dir.clone()),
            #[cfg(feature = "postgres")]
            Self::Postgres { .. } => None,
        };
        if let Some(dir) = dir.filter(|dir| !dir.as_os_str().is_empty() && !dir.exists()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|error| Failure::io(dir.display(), "create", &error))?;
        }
        Ok(())
    }

    /// Opens the store, then the audit trail at `trail` (by default beside the store, or in the
    /// store's own table): a store that cannot be opened leaves no trail file behind.
    pub(crate) async fn open(&self, trail: Option<&Path>) -> Outcome<OpenedStore> {
        self.check_exists()?;
        let trail_path = trail.map(Path::to_owned).or_else(|| self.default_trail());
        let (store, table): (Arc<dyn Store>, Option<Arc<dyn AuditSink>>) = match self {
            Self::Sqlite(path) => (Arc::new(SqliteStore::open(path).await?), None),
            Self::Files(dir) => (Arc::new(FileStore::open(dir).await?), None),
            #[cfg(feature = "postgres")]
            Self::Postgres { url, server } => {
                let builder = credential::store::PostgresStore::builder(url);
                let store = match server {
                    Some(server) => builder.behind_pooler(server),
                    None => builder,
                }
                .connect()
                .await?;
                let table: Option<Arc<dyn AuditSink>> = match trail_path {
                    Some(_) => None,
                    None => Some(Arc::new(credential::audit::PostgresAuditSink::new(&store)?)),
                };
                (Arc::new(store), table)
            }
        };
        // A trail that cannot be opened is the audit failing: nothing may happen without it.
        let trail = trail_path
            .map(|path| JsonlAuditSink::open(path).map_err(Error::audit_caused_by))
            .transpose()?;
        let audit: Arc<dyn AuditSink> = match (&trail, table) {
            (Some(trail), _) => Arc::new(trail.clone()),
            (None, Some(table)) => table,
            (None, None) => return Err(Failure::usage("no audit trail: give --audit-file")),
        };
        Ok(OpenedStore { store, audit, trail })
    }
}

/// `path` with `.suffix` appended to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_store_and_the_files_beside_it() {
        let sqlite =
            StoreLocation::parse("sqlite:/srv/creds.db", None).unwrap_or_else(|_| panic!());
        assert_eq!(sqlite.default_trail(), Some(PathBuf::from("/srv/creds.db.audit.jsonl")));
        assert_eq!(sqlite.default_kdf_file(), Some(PathBuf::from("/srv/creds.db.kdf")));
        let files = StoreLocation::parse("file:///srv/creds", None).unwrap_or_else(|_| panic!());
        assert_eq!(files.default_trail(), Some(PathBuf::from("/srv/creds/audit.jsonl")));
        for bad in ["creds.db", "sqlite:", "redis://host", "file://"] {
            let Err(failure) = StoreLocation::parse(bad, None) else {
                panic!("{bad} was accepted")
            };
            assert_eq!(failure.status, crate::exit::Status::Usage);
        }
        // A pooler stands in front of PostgreSQL only.
        let Err(failure) = StoreLocation::parse("sqlite:/srv/creds.db", Some("postgres://db/x"))
        else {
            panic!("a pooler in front of SQLite was accepted")
        };
        assert_eq!(failure.status, crate::exit::Status::Usage);
    }
}
