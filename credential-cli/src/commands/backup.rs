//! `cred export` and `cred import`: backups in the age format.
//!
//! A backup is the JSON document of [`crate::backup_format`], encrypted with age
//! (age-encryption.org/v1) to X25519 recipients or a passphrase (scrypt), binary or armored. It
//! holds the credentials in plaintext under that encryption, so a restore works under any master
//! key. An import decrypts and checks the whole backup before it writes anything: a truncated or
//! altered file imports nothing.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::{Decryptor, Encryptor, Identity, IdentityFile, Recipient};
use clap::ArgMatches;
use credential::ListFilter;
use serde_json::json;
use zeroize::Zeroizing;

use crate::backup_format;
use crate::exit::{Failure, Outcome, Status};
use crate::files::write_private;
use crate::globals::Globals;
use crate::prompt;

pub(super) async fn export(globals: &Globals, args: &ArgMatches) -> Outcome {
    let encryptor = encryptor(args)?;
    let output_path = args.get_one::<PathBuf>("output");
    let armor = args.get_flag("armor");
    if output_path.is_none() && !armor && std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "refusing to write a binary backup to the terminal: give -o FILE or --armor",
        ));
    }
    if let Some(path) = output_path.filter(|path| path.exists()) {
        return Err(Failure::new(
            Status::Conflict,
            "exists",
            format!("{} exists; a backup never overwrites a file", path.display()),
        ));
    }
    let manager = globals.manager().await?;
    let metas = manager.list(&ListFilter::all()).await?;
    let mut credentials = Vec::with_capacity(metas.len());
    for meta in &metas {
        credentials.push(manager.export(&meta.id).await?);
    }
    // The trail records the export before the backup exists.
    globals.flush_audit().await?;
    let document = backup_format::encode(&globals.environment, &credentials)?;
    drop(credentials);
    let encrypted = encrypt(encryptor, &document, armor)?;
    match output_path {
        Some(path) => write_private(path, &encrypted)?,
        None => std::io::stdout()
            .lock()
            .write_all(&encrypted)
            .map_err(|error| Failure::io("standard output", "write", &error))?,
    }
    let human = format!("exported {} credential(s)", metas.len());
    if output_path.is_some() {
        globals.output.either(&human, &json!({ "credentials": metas.len() }));
    } else {
        globals.output.note(&human);
    }
    Ok(())
}

/// The age encryptor the options ask for.
fn encryptor(args: &ArgMatches) -> Outcome<Encryptor> {
    if args.get_flag("passphrase") {
        let passphrase = prompt::new_passphrase()?;
        return Ok(Encryptor::with_user_passphrase(passphrase));
    }
    let mut recipients: Vec<age::x25519::Recipient> = Vec::new();
    for text in args.get_many::<String>("recipient").into_iter().flatten() {
        recipients.push(parse_recipient(text, "--recipient")?);
    }
    for file in args.get_many::<String>("recipients-file").into_iter().flatten() {
        let path = Path::new(file);
        let text = std::fs::read_to_string(path)
            .map_err(|error| Failure::io(path.display(), "read", &error))?;
        for line in
            text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'))
        {
            recipients.push(parse_recipient(line, file)?);
        }
    }
    if recipients.is_empty() {
        return Err(Failure::usage(
            "say whom the backup is for: --recipient AGE1..., --recipients-file PATH, or \
             --passphrase",
        ));
    }
    Encryptor::with_recipients(recipients.iter().map(|recipient| recipient as &dyn Recipient))
        .map_err(|error| Failure::usage(format!("cannot encrypt to these recipients: {error}")))
}

fn parse_recipient(text: &str, origin: &str) -> Outcome<age::x25519::Recipient> {
    text.parse()
        .map_err(|_| Failure::usage(format!("{origin}: not an age X25519 recipient (age1...)")))
}

fn encrypt(encryptor: Encryptor, document: &[u8], armor: bool) -> Outcome<Vec<u8>> {
    let failed = |error: std::io::Error| {
        Failure::new(Status::Failed, "backup", format!("cannot encrypt the backup: {error}"))
    };
    let format = if armor { Format::AsciiArmor } else { Format::Binary };
    let armored = ArmoredWriter::wrap_output(Vec::new(), format).map_err(failed)?;
    let mut writer = encryptor.wrap_output(armored).map_err(failed)?;
    writer.write_all(document).map_err(failed)?;
    writer.finish().and_then(ArmoredWriter::finish).map_err(failed)
}

pub(super) async fn import(globals: &Globals, args: &ArgMatches) -> Outcome {
    let file = args.get_one::<String>("file").map_or("-", String::as_str);
    let encrypted = read_input(file)?;
    let identities: Vec<PathBuf> =
        args.get_many::<String>("identity").into_iter().flatten().map(PathBuf::from).collect();
    let document = decrypt(&encrypted, &identities)?;
    let (from_environment, credentials) = backup_format::decode(&document)?;
    drop(document);
    let manager = globals.manager().await?;
    let existing: BTreeSet<String> =
        manager.list(&ListFilter::all()).await?.into_iter().map(|meta| meta.id).collect();
    let clashes: Vec<&str> = credentials
        .iter()
        .map(|credential| credential.id.as_str())
        .filter(|id| existing.contains(*id))
        .collect();
    if !clashes.is_empty() {
        let shown = clashes.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        return Err(Failure::new(
            Status::Conflict,
            "conflict",
            format!(
                "{} credential(s) of the backup exist already ({shown}{}); nothing was imported",
                clashes.len(),
                if clashes.len() > 5 { ", ..." } else { "" }
            ),
        ));
    }
    // All or nothing: every credential is checked before the first is written, and those written
    // are taken back if a later one fails.
    let imported = manager.import_all(&credentials).await.map_err(|error| {
        let failure = Failure::from(error);
        Failure { message: format!("{}; nothing was imported", failure.message), ..failure }
    })?;
    let imported = imported.len();
    let human = format!(
        "imported {imported} credential(s) from environment `{from_environment}` into `{}`",
        globals.environment
    );
    globals
        .output
        .either(&human, &json!({ "credentials": imported, "from_environment": from_environment }));
    Ok(())
}

/// The bytes of `file`, or of standard input for `-`.
fn read_input(file: &str) -> Outcome<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == "-" {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|error| Failure::io("standard input", "read", &error))?;
    } else {
        let path = Path::new(file);
        bytes = std::fs::read(path).map_err(|error| Failure::io(path.display(), "read", &error))?;
    }
    Ok(bytes)
}

/// The plaintext of an age file, armored or not, fully read and authenticated.
fn decrypt(encrypted: &[u8], identity_files: &[PathBuf]) -> Outcome<Zeroizing<Vec<u8>>> {
    let altered = |what: &str| {
        Failure::new(
            Status::Integrity,
            "backup_unreadable",
            format!("the backup cannot be decrypted ({what}); nothing was imported"),
        )
    };
    let decryptor = Decryptor::new(ArmoredReader::new(encrypted))
        .map_err(|_| altered("not an age file, or its header is damaged"))?;
    let mut reader = if decryptor.is_scrypt() {
        let passphrase = prompt::passphrase("Backup passphrase")?;
        let identity = age::scrypt::Identity::new(passphrase);
        decryptor
            .decrypt(std::iter::once(&identity as &dyn Identity))
            .map_err(|_| altered("wrong passphrase, or a damaged header"))?
    } else {
        if identity_files.is_empty() {
            return Err(Failure::usage(
                "this backup is encrypted to recipients: give -i IDENTITY_FILE",
            ));
        }
        let mut identities = Vec::new();
        for path in identity_files {
            let file = IdentityFile::from_file(path.display().to_string())
                .map_err(|error| Failure::io(path.display(), "read the identities in", &error))?;
            identities.extend(file.into_identities().map_err(|_| {
                Failure::usage(format!("{}: unusable identity file", path.display()))
            })?);
        }
        decryptor
            .decrypt(identities.iter().map(|identity| identity.as_ref() as &dyn Identity))
            .map_err(|_| altered("no identity given matches it, or its header is damaged"))?
    };
    let mut plaintext = Zeroizing::new(Vec::with_capacity(encrypted.len()));
    reader.read_to_end(&mut plaintext).map_err(|_| altered("it is truncated or altered"))?;
    Ok(plaintext)
}
