//! `cred init`: the store and its master key.

use clap::ArgMatches;
use credential::ListFilter;
use serde_json::json;

use crate::exit::{Failure, Outcome};
use crate::globals::Globals;
use crate::key_source::{create_key_file, create_passphrase_key};

pub(super) async fn run(globals: &Globals, args: &ArgMatches) -> Outcome {
    let location = globals.location()?;
    location.create().await?;
    let (ring, key) = if args.get_flag("passphrase") {
        let kdf_file = globals.kdf_file().ok_or_else(|| {
            Failure::usage(
                "this store keeps no files beside it: give --kdf-file PATH for the passphrase's \
                 salt and cost",
            )
        })?;
        let ring = create_passphrase_key(&kdf_file, globals.passphrase_file.as_deref()).await?;
        (ring, format!("passphrase (salt and cost in {})", kdf_file.display()))
    } else {
        if let Some(path) = &globals.key_file
            && create_key_file(path)?
        {
            globals.output.note(&format!(
                "wrote a new master key to {} (mode 0600); keep a copy somewhere safe",
                path.display()
            ));
        }
        let source = globals.key_source()?;
        (source.load().await?, source.describe())
    };
    let key_id = ring.current_id().to_string();
    let manager = globals.manager_with(ring).await?;
    let credentials = manager.list(&ListFilter::all()).await?.len();
    let human = format!(
        "{} ready: master key {key_id} from {key}; {credentials} credential(s) in environment `{}`",
        location.describe(),
        globals.environment,
    );
    globals.output.either(
        &human,
        &json!({
            "store": location.describe(),
            "key_id": key_id,
            "environment": globals.environment,
            "credentials": credentials,
        }),
    );
    Ok(())
}
