//! What every command shares: the global options, and a manager over the store acting as the
//! operator who runs the command.

use std::path::PathBuf;

use clap::ArgMatches;
use credential::{KeyRing, Manager, Principal};

use crate::exit::{Failure, Outcome};
use crate::key_source::KeySource;
use crate::output::Output;
use crate::store_location::{OpenedStore, StoreLocation};

/// The global options.
pub(crate) struct Globals {
    pub(crate) location: Option<StoreLocation>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) key_env: Option<String>,
    pub(crate) kdf_file: Option<PathBuf>,
    pub(crate) environment: String,
    pub(crate) principal: String,
    pub(crate) audit_file: Option<PathBuf>,
    pub(crate) output: Output,
}

impl Globals {
    pub(crate) fn read(matches: &ArgMatches) -> Outcome<Self> {
        let location =
            matches.get_one::<String>("store").map(|url| StoreLocation::parse(url)).transpose()?;
        let principal = match matches.get_one::<String>("principal") {
            Some(principal) => principal.clone(),
            None => ["USER", "LOGNAME"]
                .iter()
                .find_map(|var| std::env::var(var).ok().filter(|user| !user.is_empty()))
                .map_or_else(|| "operator".to_owned(), |user| format!("user:{user}")),
        };
        Ok(Self {
            location,
            key_file: matches.get_one::<PathBuf>("key-file").cloned(),
            key_env: matches.get_one::<String>("key-env").cloned(),
            kdf_file: matches.get_one::<PathBuf>("kdf-file").cloned(),
            environment: matches
                .get_one::<String>("env")
                .cloned()
                .unwrap_or_else(|| credential::DEFAULT_ENVIRONMENT.to_owned()),
            principal,
            audit_file: matches.get_one::<PathBuf>("audit-file").cloned(),
            output: Output::new(matches.get_flag("json")),
        })
    }

    pub(crate) fn location(&self) -> Outcome<&StoreLocation> {
        self.location
            .as_ref()
            .ok_or_else(|| Failure::usage("no store: give --store URL or set CRED_STORE"))
    }

    /// The passphrase key's settings file: `--kdf-file`, else beside the store.
    pub(crate) fn kdf_file(&self) -> Outcome<Option<PathBuf>> {
        Ok(self
            .kdf_file
            .clone()
            .or_else(|| self.location.as_ref().and_then(StoreLocation::default_kdf_file)))
    }

    pub(crate) fn key_source(&self) -> Outcome<KeySource> {
        KeySource::choose(self.key_file.as_deref(), self.key_env.as_deref(), self.kdf_file()?)
    }

    /// Opens the store and its audit trail.
    pub(crate) async fn open_store(&self) -> Outcome<OpenedStore> {
        self.location()?.open(self.audit_file.as_deref()).await
    }

    /// A manager over the store with the key from the key source, acting as the principal.
    pub(crate) async fn session(&self) -> Outcome<Session> {
        self.location()?;
        let ring = self.key_source()?.load().await?;
        self.session_with(ring).await
    }

    /// A manager over the store with `ring`, acting as the principal.
    pub(crate) async fn session_with(&self, ring: KeyRing) -> Outcome<Session> {
        let opened = self.open_store().await?;
        let manager = Manager::builder()
            .store(std::sync::Arc::clone(&opened.store))
            .key_ring(ring)
            .environment(&self.environment)
            .audit(std::sync::Arc::clone(&opened.audit))
            .operator(Principal::named(&self.principal))
            .build()
            .await?;
        Ok(Session { manager, opened })
    }
}

/// An open manager, and the store and trail under it.
pub(crate) struct Session {
    pub(crate) manager: Manager,
    pub(crate) opened: OpenedStore,
}

impl Session {
    /// Waits for every queued audit event to be written: call before the process exits.
    pub(crate) async fn close(&self) -> Outcome {
        Ok(self.opened.audit.flush().await?)
    }
}
