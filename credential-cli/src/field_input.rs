//! Field values from the command line: plain values as given, secrets only from standard input,
//! a file or a prompt — never from the arguments, where they would land in shell history and
//! process listings.

use std::io::Read;
use std::path::Path;

use credential::{ExposeSecret, FieldSchema, FieldValues, Manager, RevealedField, SecretString};
use zeroize::Zeroizing;

use crate::exit::{Failure, Outcome, Status};
use crate::key_source::io_failure;
use crate::prompt;

/// The field values `sets` (`NAME=VALUE` each) give for `kind`, secrets read from where they
/// point, missing secrets asked for at the terminal; a field still missing keeps its value in
/// `current` (the version a rotation replaces; empty for a new credential).
pub(crate) fn read(
    manager: &Manager,
    kind: &str,
    sets: &[String],
    current: &[RevealedField],
) -> Outcome<FieldValues> {
    let Some(fields) = manager.kind_fields(kind) else {
        return Err(Failure::new(
            Status::Invalid,
            "unknown_kind",
            format!("unknown kind `{kind}`; known kinds: {}", manager.kinds().join(", ")),
        ));
    };
    let mut values = FieldValues::new();
    let mut given = Vec::new();
    let mut stdin_taken = false;
    for set in sets {
        let (name, value) = set.split_once('=').ok_or_else(|| {
            Failure::usage("--set takes FIELD=VALUE (for a secret, FIELD=- or FIELD=@FILE)")
        })?;
        let field = find(kind, fields, name)?;
        if given.contains(&field.name) {
            return Err(Failure::usage(format!("field `{name}` is given twice")));
        }
        given.push(field.name);
        values = if field.is_secret() {
            let secret = read_secret(name, value, &mut stdin_taken)?;
            values.secret(field.name, secret)
        } else {
            values.plain(field.name, value)
        };
    }
    let empty_answer = if current.is_empty() { "empty to leave out" } else { "empty keeps it" };
    for field in fields.iter().filter(|field| !given.contains(&field.name)) {
        if field.is_secret() && prompt::interactive() {
            let question = format!("{} (secret, {empty_answer})", field.name);
            if let Some(secret) = prompt::secret(&question)? {
                values = values.secret(field.name, secret);
                continue;
            }
        }
        if let Some(kept) = current.iter().find(|kept| kept.name == field.name) {
            values = if kept.secret {
                values.secret(field.name, kept.value.clone())
            } else {
                values.plain(field.name, kept.value.expose_secret())
            };
        }
    }
    Ok(values)
}

/// The field of `kind` named `name`.
fn find<'a>(kind: &str, fields: &'a [FieldSchema], name: &str) -> Outcome<&'a FieldSchema> {
    fields.iter().find(|field| field.name == name).ok_or_else(|| {
        let names: Vec<_> = fields
            .iter()
            .map(|field| {
                if field.is_secret() {
                    format!("{} (secret)", field.name)
                } else {
                    field.name.to_owned()
                }
            })
            .collect();
        Failure::new(
            Status::Invalid,
            "unknown_field",
            format!("kind `{kind}` has no field `{name}`; its fields: {}", names.join(", ")),
        )
    })
}

/// A secret from `-` (standard input, once) or `@FILE`; anything else is refused without being
/// repeated.
fn read_secret(name: &str, source: &str, stdin_taken: &mut bool) -> Outcome<SecretString> {
    if source == "-" {
        if std::mem::replace(stdin_taken, true) {
            return Err(Failure::usage("only one field can be read from standard input"));
        }
        let mut text = Zeroizing::new(String::new());
        std::io::stdin().read_to_string(&mut text).map_err(|error| {
            Failure::new(Status::Failed, "io", format!("cannot read standard input: {error}"))
        })?;
        return Ok(without_final_newline(&text));
    }
    if let Some(path) = source.strip_prefix('@') {
        let path = Path::new(path);
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|error| io_failure(path, "read", &error))?,
        );
        return Ok(without_final_newline(&text));
    }
    Err(Failure::usage(format!(
        "field `{name}` is secret and is never taken from the command line: give {name}=- to read \
         it from standard input, {name}=@FILE to read it from a file, or leave it out to be asked \
         for it at the terminal"
    )))
}

/// `text` without one final line break (what `echo` and editors add).
fn without_final_newline(text: &str) -> SecretString {
    let text = text.strip_suffix('\n').map_or(text, |text| text.strip_suffix('\r').unwrap_or(text));
    SecretString::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_secret_is_refused_without_being_repeated() {
        let mut taken = false;
        let Err(failure) = read_secret("token", "ghp_canary_value", &mut taken) else {
            panic!("a literal secret was accepted");
        };
        assert_eq!(failure.status, Status::Usage);
        assert!(!failure.message.contains("ghp_canary_value"));
        assert!(failure.message.contains("token=-") && failure.message.contains("token=@FILE"));
    }

    #[test]
    fn one_final_line_break_is_dropped() {
        assert_eq!(without_final_newline("abc\n").expose_secret(), "abc");
        assert_eq!(without_final_newline("abc\r\n").expose_secret(), "abc");
        assert_eq!(without_final_newline("abc\n\n").expose_secret(), "abc\n");
        assert_eq!(without_final_newline("abc").expose_secret(), "abc");
    }
}
