//! What the derive must accept: every attribute, a generic struct, the crate under another path.
//! Ordinary tests rather than trybuild cases, so that the compile-fail cases are only checked,
//! all in one compiler run, and these are built once with the rest of the workspace.

mod crate_path;
mod every_attribute;
mod generic_struct;
