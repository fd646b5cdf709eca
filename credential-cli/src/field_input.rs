//! Field values from the command line: plain values as given, secrets only from standard input,
//! a file or a prompt — never from the arguments, where they would land in shell history and
//! process listings.

use std::io::Read;
use std::path::Path;

use credential::field::FieldSchema;
use credential::{ExposeSecret, FieldValues, Manager, RevealedField, SecretString};
use zeroize::Zeroizing;

use crate::exit::{Failure, Outcome, Status};
use crate::prompt;

/// The field values given on the command line for a kind, secrets already read from where they
/// point.
pub(crate) struct Given {
    fields: &'static [FieldSchema],
    names: Vec<&'static str>,
    values: FieldValues,
}

impl Given {
    /// Reads `sets` (`NAME=VALUE` each) for `kind`: names checked, literal secrets refused,
    /// secrets read from standard input or their files.
    pub(crate) fn read(manager: &Manager, kind: &str, sets: &[String]) -> Outcome<Self> {
        let Some(fields) = manager.kind_fields(kind) else {
            return Err(Failure::new(
                Status::Invalid,
                "unknown_kind",
                format!("unknown kind `{kind}`; known kinds: {}", manager.kinds().join(", ")),
            ));
        };
        let mut given = Self { fields, names: Vec::new(), values: FieldValues::new() };
        let mut stdin_taken = false;
        for set in sets {
            let (name, value) = set.split_once('=').ok_or_else(|| {
                Failure::usage("--set takes FIELD=VALUE (for a secret, FIELD=- or FIELD=@FILE)")
            })?;
            let field = find(kind, fields, name)?;
            if given.names.contains(&field.name) {
                return Err(Failure::usage(format!("field `{name}` is given twice")));
            }
            given.names.push(field.name);
            let values = std::mem::take(&mut given.values);
            given.values = if field.is_secret() {
                values.secret(field.name, read_secret(name, value, &mut stdin_taken)?)
            } else {
                values.plain(field.name, value)
            };
        }
        Ok(given)
    }

    /// Whether some field of the kind was not given.
    pub(crate) fn incomplete(&self) -> bool {
        self.fields.iter().any(|field| !self.names.contains(&field.name))
    }

    /// The values, each missing secret asked for at the terminal (when there is one), and then
    /// each field still missing kept from `current` (the version a rotation replaces; `None` for
    /// a new credential).
    pub(crate) fn complete(self, current: Option<&[RevealedField]>) -> Outcome<FieldValues> {
        let Self { fields, names, mut values } = self;
        for field in fields.iter().filter(|field| !names.contains(&field.name)) {
            if field.is_secret() && prompt::interactive() {
                let empty_answer = match (current.is_some(), field.required) {
                    (true, _) => "empty keeps it",
                    (false, true) => "required",
                    (false, false) => "empty to leave out",
                };
                let question = format!("{} (secret, {empty_answer})", field.name);
                if let Some(secret) = prompt::secret(&question)? {
                    values = values.secret(field.name, secret);
                    continue;
                }
            }
            let kept = current.unwrap_or_default().iter().find(|kept| kept.name == field.name);
            if let Some(kept) = kept {
                values = if kept.secret {
                    values.secret(field.name, kept.value.clone())
                } else {
                    values.plain(field.name, kept.value.expose_secret())
                };
            }
        }
        Ok(values)
    }
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
/// What reading a secret from standard input reserves.
const STDIN_RESERVE: usize = 64 * 1024;

pub(crate) fn read_secret(
    name: &str,
    source: &str,
    stdin_taken: &mut bool,
) -> Outcome<SecretString> {
    if source == "-" {
        if std::mem::replace(stdin_taken, true) {
            return Err(Failure::usage("only one field can be read from standard input"));
        }
        // Room reserved up front, so the buffer is not reallocated (leaving unwiped copies) for
        // any ordinary secret.
        let mut text = Zeroizing::new(String::with_capacity(STDIN_RESERVE));
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| Failure::io("standard input", "read", &error))?;
        return Ok(without_final_newline(&text));
    }
    if let Some(path) = source.strip_prefix('@') {
        let path = Path::new(path);
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|error| Failure::io(path.display(), "read", &error))?,
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
