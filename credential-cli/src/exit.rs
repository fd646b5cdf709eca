//! Exit codes and the failures that lead to them: stable, documented, for scripts.

use std::fmt;
use std::process::ExitCode;

use credential::Error;

/// Why a command failed, by the exit code it ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// 1: anything not listed below (a file that cannot be read, a doctor check that failed).
    Failed = 1,
    /// 2: the command line is wrong; nothing was done.
    Usage = 2,
    /// 3: no such credential, or the principal may not touch it (the two look the same).
    NotFound = 3,
    /// 4: a concurrent change won, or the id exists already.
    Conflict = 4,
    /// 5: a value, field, kind or id that is not valid.
    Invalid = 5,
    /// 6: sealed data, a backup or the audit trail does not check out, or the master key is
    /// wrong.
    Integrity = 6,
    /// 7: the credential's state refuses the step (revoked, expired, not active, needs
    /// reauthentication).
    RefusedState = 7,
    /// 8: the audit trail could not record the operation, so it did not happen.
    AuditFailed = 8,
    /// 9: the store cannot be reached or used.
    StoreUnavailable = 9,
}

/// The table printed by `cred --help`.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other failure (an unreadable file, a failed doctor check)
  2  usage error: nothing was done
  3  not found, or access denied
  4  conflict: changed concurrently, or the id exists
  5  invalid value, field, kind or id
  6  integrity: wrong master key, altered data, tampered backup or audit trail
  7  the credential's state refuses the step (revoked, expired, not active)
  8  the audit trail could not record it, so it did not happen
  9  the store is unreachable or unusable";

impl Status {
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The status a library error ends a command with.
    pub(crate) fn of(error: &Error) -> Self {
        match error {
            Error::NotFound { .. } | Error::AccessDenied { .. } => Self::NotFound,
            Error::Conflict { .. } => Self::Conflict,
            Error::Validation(_)
            | Error::KindMismatch { .. }
            | Error::InvalidId { .. }
            | Error::UnknownField { .. }
            | Error::AmbiguousField { .. }
            | Error::NotText { .. }
            | Error::AbsentField { .. }
            | Error::UnknownKind { .. }
            | Error::InvalidFieldValue { .. }
            | Error::InvalidUrl { .. }
            | Error::InvalidCertificate { .. }
            | Error::Template { .. }
            | Error::InvalidMasterKey { .. }
            | Error::InvalidKeyId
            | Error::InvalidKdf { .. } => Self::Invalid,
            Error::Decrypt
            | Error::Decode { .. }
            | Error::WrongMasterKey { .. }
            | Error::CorruptRecord { .. }
            | Error::CorruptStore { .. }
            | Error::AuditTampered { .. } => Self::Integrity,
            Error::Revoked { .. }
            | Error::Expired { .. }
            | Error::NotActive { .. }
            | Error::WrongState { .. }
            | Error::VersionUnavailable { .. }
            | Error::ReauthRequired { .. } => Self::RefusedState,
            Error::Audit { .. } | Error::AuditBackpressure => Self::AuditFailed,
            Error::Storage { .. } | Error::UnsupportedSchema { .. } | Error::ReadOnly { .. } => {
                Self::StoreUnavailable
            }
            _ => Self::Failed,
        }
    }
}

/// A failed command: its status, and a message that never holds a secret value.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: Status,
    /// A short machine-readable name (`not_found`, `usage`, ...).
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self { status: Status::Usage, code: "usage", message: message.into() }
    }

    pub(crate) fn new(status: Status, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// A file or stream `what` that could not be `doing`: exit 1, naming it, never its content.
    pub(crate) fn io(what: impl fmt::Display, doing: &str, error: &std::io::Error) -> Self {
        Self::new(Status::Failed, "io", format!("cannot {doing} {what}: {error}"))
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.status.code())
    }
}

impl From<Error> for Failure {
    /// The error's message followed by each cause it does not already say.
    fn from(error: Error) -> Self {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self { status: Status::of(&error), code: error.code(), message }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a command returns.
pub(crate) type Outcome<T = ()> = std::result::Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_map_to_their_documented_codes() {
        let cases = [
            (Error::NotFound { id: "a".into() }, 3),
            (Error::AccessDenied { id: "a".into() }, 3),
            (Error::Conflict { id: "a".into() }, 4),
            (Error::UnknownKind { kind: "k".into() }, 5),
            (Error::Decrypt, 6),
            (Error::WrongMasterKey { key_id: "k".into() }, 6),
            (Error::Revoked { id: "a".into() }, 7),
            (Error::AuditBackpressure, 8),
            (Error::UnsupportedSchema { found: 9, supported: 4 }, 9),
        ];
        for (error, code) in cases {
            assert_eq!(Failure::from(error).status.code(), code);
        }
        for line in EXIT_CODES_HELP.lines().skip(1) {
            let code: u8 = line.split_whitespace().next().unwrap_or_default().parse().unwrap_or(99);
            assert!(code <= Status::StoreUnavailable.code());
        }
    }
}
