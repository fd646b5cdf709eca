//! What every command shares: the global options, the store they name, and a manager over it
//! acting as the operator who runs the command.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use clap::ArgMatches;
use credential::audit::AuditSink;
use credential::{KeyRing, ListFilter, Manager, ManagerBuilder, Principal};

use crate::exit::{Failure, Outcome, Status};
use crate::key_source::KeySource;
use crate::output::Output;
use crate::store_location::{OpenedStore, StoreLocation};

/// The global options.
pub(crate) struct Globals {
    pub(crate) location: Option<StoreLocation>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) key_env: Option<String>,
    pub(crate) kdf_file: Option<PathBuf>,
    /// Where a passphrase key's passphrase is read from, instead of the terminal.
    pub(crate) passphrase_file: Option<PathBuf>,
    pub(crate) environment: String,
    pub(crate) principal: String,
    pub(crate) audit_file: Option<PathBuf>,
    pub(crate) output: Output,
    /// The store opened, and its audit trail, to flush before the process exits.
    opened: OnceLock<OpenedStore>,
    /// Kinds the application added (see `Cli::kind`), registered with every manager.
    registrations: Vec<fn(ManagerBuilder) -> ManagerBuilder>,
}

impl Globals {
    pub(crate) fn read(
        matches: &ArgMatches,
        registrations: Vec<fn(ManagerBuilder) -> ManagerBuilder>,
    ) -> Outcome<Self> {
        let behind_pooler = matches.get_one::<String>("behind-pooler").map(String::as_str);
        let location = matches
            .get_one::<String>("store")
            .map(|url| StoreLocation::parse(url, behind_pooler))
            .transpose()?;
        let principal = match matches.get_one::<String>("principal") {
            Some(principal) => principal.clone(),
            None => format!("user:{}", user_name()),
        };
        Ok(Self {
            location,
            key_file: matches.get_one::<PathBuf>("key-file").cloned(),
            key_env: matches.get_one::<String>("key-env").cloned(),
            kdf_file: matches.get_one::<PathBuf>("kdf-file").cloned(),
            passphrase_file: matches.get_one::<PathBuf>("passphrase-file").cloned(),
            environment: matches
                .get_one::<String>("env")
                .cloned()
                .unwrap_or_else(|| credential::DEFAULT_ENVIRONMENT.to_owned()),
            principal,
            audit_file: matches.get_one::<PathBuf>("audit-file").cloned(),
            output: Output::new(matches.get_flag("json")),
            opened: OnceLock::new(),
            registrations,
        })
    }

    pub(crate) fn location(&self) -> Outcome<&StoreLocation> {
        self.location
            .as_ref()
            .ok_or_else(|| Failure::usage("no store: give --store URL or set CRED_STORE"))
    }

    /// The passphrase key's settings file: `--kdf-file`, else beside the store.
    pub(crate) fn kdf_file(&self) -> Option<PathBuf> {
        self.kdf_file
            .clone()
            .or_else(|| self.location.as_ref().and_then(StoreLocation::default_kdf_file))
    }

    pub(crate) fn key_source(&self) -> Outcome<KeySource> {
        let source =
            KeySource::choose(self.key_file.as_deref(), self.key_env.as_deref(), self.kdf_file())?;
        Ok(source.with_passphrase_file(self.passphrase_file.clone()))
    }

    /// The store and its audit trail, opened once per command however many steps use them.
    pub(crate) async fn open_store(&self) -> Outcome<OpenedStore> {
        if let Some(opened) = self.opened.get() {
            return Ok(opened.clone());
        }
        let opened = self.location()?.open(self.audit_file.as_deref()).await?;
        Ok(self.opened.get_or_init(|| opened).clone())
    }

    /// Waits until every audit event queued by the command is written, whether the command
    /// succeeded or not: called once, before the process exits.
    pub(crate) async fn flush_audit(&self) -> Outcome {
        match self.opened.get() {
            Some(opened) => Ok(opened.audit.flush().await?),
            None => Ok(()),
        }
    }

    /// A manager over the store with the key from the key source, acting as the principal.
    pub(crate) async fn manager(&self) -> Outcome<Manager> {
        self.location()?;
        let ring = self.key_source()?.load().await?;
        self.manager_with(ring).await
    }

    /// A manager over the store with `ring`, acting as the principal.
    pub(crate) async fn manager_with(&self, ring: KeyRing) -> Outcome<Manager> {
        self.manager_built(ring, |builder| builder).await
    }

    /// A manager over the store with `ring`, acting as the principal, built with what `configure`
    /// adds (a rotator, say).
    pub(crate) async fn manager_built(
        &self,
        ring: KeyRing,
        configure: impl FnOnce(ManagerBuilder) -> ManagerBuilder,
    ) -> Outcome<Manager> {
        let opened = self.open_store().await?;
        let given = ring.current_id().as_str().to_owned();
        let builder = Manager::builder()
            .store(Arc::clone(&opened.store))
            .key_ring(ring)
            .environment(&self.environment)
            .audit(Arc::clone(&opened.audit))
            .operator(Principal::named(&self.principal));
        let builder =
            self.registrations.iter().fold(builder, |builder, register| register(builder));
        match configure(builder).build().await {
            Err(credential::Error::WrongMasterKey { key_id }) => {
                Err(self.wrong_key(&opened, &given, key_id).await)
            }
            built => Ok(built?),
        }
    }

    /// Why the key `given` does not open the store, which needs `needed` too: another key, or,
    /// when credentials are sealed under both, a rekey that was interrupted, with how to finish
    /// it.
    async fn wrong_key(&self, opened: &OpenedStore, given: &str, needed: String) -> Failure {
        let filter = ListFilter::all().environment(self.environment.clone());
        let in_use = match opened.store.list(&filter).await {
            Ok(metas) => metas.iter().any(|meta| meta.key_id == given),
            Err(_) => false,
        };
        if !in_use {
            return credential::Error::WrongMasterKey { key_id: needed }.into();
        }
        Failure::new(
            Status::Integrity,
            "rekey_interrupted",
            format!(
                "the credentials are sealed under two master keys, `{given}` (the key given) and \
                 `{needed}`: a rekey was interrupted. Finish it: run `cred rekey` again with the \
                 old key as --key-file and the new one as --new-key-file; it carries on where it \
                 stopped"
            ),
        )
    }
}

/// Who runs the command: `$USER`, else `$LOGNAME`, else the name `/etc/passwd` gives the real
/// user id, else the id itself.
fn user_name() -> String {
    let from_env = ["USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|n| !n.is_empty()));
    if let Some(name) = from_env {
        return name;
    }
    let uid = rustix::process::getuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    name_of(&passwd, uid).unwrap_or_else(|| uid.to_string())
}

/// The name of user `uid` in the text of `/etc/passwd`.
fn name_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_user_id_is_named_from_the_password_file() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n# comment\nops:x:1001:1001::/home/ops:/bin/sh\n";
        assert_eq!(super::name_of(passwd, 1001).as_deref(), Some("ops"));
        assert_eq!(super::name_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(super::name_of(passwd, 7), None);
    }
}
