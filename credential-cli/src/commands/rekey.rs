//! `cred rekey`: every credential re-sealed under a new master key, resumable; without a new key,
//! the records written before records were tagged rewritten, tagged.

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
    let mut ring = globals.key_source()?.load().await?;
    let new_key_file = args.get_one::<PathBuf>("new-key-file");
    if let Some(new_key_file) = new_key_file {
        if create_key_file(new_key_file)? {
            globals.output.note(&format!(
                "wrote a new master key to {} (mode 0600); keep a copy somewhere safe",
                new_key_file.display()
            ));
        }
        let new_id = ring.add(MasterKey::from_file(new_key_file)?);
        ring.make_current(&new_id)?;
    }
    let key_id = ring.current_id().clone();
    let manager = globals.manager_with(ring).await?;
    let mut progress = Progress::new("rekey");
    let report = manager
        .rekey(|step: RekeyProgress| {
            progress.show(step.done, step.total, &format!("resealed {}", step.resealed));
        })
        .await?;
    let only_current = report.keys_in_use.iter().all(|key| *key == key_id.as_str());
    let mut human = format!(
        "{} credential(s) looked at, {} re-sealed under key {key_id}",
        report.records, report.resealed
    );
    if let (Some(new_key_file), true) = (new_key_file, only_current) {
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
            "new_key_id": key_id.as_str(),
            "keys_in_use": report.keys_in_use,
        }),
    );
    Ok(())
}
