//! What operators do with credentials, as thin layers over the core's two paths: the typed
//! lifecycle handles, the untyped handles operator tools use, backups and rekeying.

mod backup;
mod backup_fields;
mod lifecycle;
mod rekey;
mod untyped;

pub use self::backup::{ExportedCredential, ExportedVersion};
pub(super) use self::backup::{export, import, import_all};
pub(super) use self::lifecycle::AnyState;
pub use self::lifecycle::{Active, AnyManaged, Draft, Live, Managed, Revoked, Rotating, State};
pub(super) use self::rekey::rekey;
pub use self::rekey::{RekeyProgress, RekeyReport};
pub use self::untyped::{DynManaged, FieldView, RevealedField};
