//! `cred rekey`: every credential re-sealed under a new master key, resumable.

use std::path::PathBuf;

use clap::ArgMatches;
use credential::RekeyProgress;
use credential::crypto::MasterKey;
use serde_json::json;

use crate::exit::Outcome;
use crate::globals::Globals;
use crate::key_source::create_key_file;
use crate::progress::Progress;

pub(super) async fn run(globals: &Globals, args: &ArgMatches) -> Outcome {
    let new_key_file = args.get_one::<PathBuf>("new-key-file").cloned().unwrap_or_default();
    if create_key_file(&new_key_file)? {
        globals.output.note(&format!(
            "wrote a new master key to {} (mode 0600); keep a copy somewhere safe",
            new_key_file.display()
        ));
    }
    let new_key = MasterKey::from_file(&new_key_file)?;
    let mut ring = globals.key_source()?.load().await?;
    let new_id = ring.add(new_key);
    ring.make_current(&new_id)?;
    let manager = globals.manager_with(ring).await?;
    let mut progress = Progress::new("rekey");
    let report = manager
        .rekey(|step: RekeyProgress| {
            progress.show(step.done, step.total, &format!("resealed {}", step.resealed));
        })
        .await?;
    let only_new = report.keys_in_use.iter().all(|key| *key == new_id.as_str());
    let mut human = format!(
        "{} credential(s) looked at, {} re-sealed under key {new_id}",
        report.records, report.resealed
    );
    if only_new {
        human.push_str(&format!(
            "; every credential is under the new key: use --key-file {} from now on",
            new_key_file.display()
        ));
    }
    globals.output.either(
        &human,
        &json!({
            "records": report.records,
            "resealed": report.resealed,
            "new_key_id": new_id.as_str(),
            "keys_in_use": report.keys_in_use,
        }),
    );
    Ok(())
}
