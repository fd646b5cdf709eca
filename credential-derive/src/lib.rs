//! `#[derive(Credential)]` for the [`credential`](https://docs.rs/credential) crate, which
//! re-exports it and documents its attributes.
//!
//! The derive runs in three phases: `ast` reads the input into a borrowed model with typed
//! attributes (`attr`), `valid` checks it as a whole, and `expand` generates code from the
//! checked model. Every mistake is collected in a `ctxt::Ctxt` and reported in one compile;
//! with mistakes, `fallback` emits the errors and stub impls.
#![forbid(unsafe_code)]

mod ast;
mod attr;
mod case;
mod ctxt;
mod expand;
mod fallback;
mod symbol;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

use crate::ctxt::Ctxt;

/// Derives `credential::Credential` and a redacting `Debug`. See the `credential` crate.
#[proc_macro_derive(Credential, attributes(credential, secret))]
pub fn derive_credential(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let cx = Ctxt::new();
    let checked = ast::Input::from_syn(&cx, &input).map(|parsed| valid::check(&cx, parsed));
    let krate = checked
        .as_ref()
        .map_or_else(|| syn::parse_quote!(::credential), |checked| checked.krate.clone());
    let expanded = match (cx.check(), checked) {
        (Ok(()), Some(checked)) => expand::expand(&checked),
        (Err(error), _) => fallback::expand(&input, &krate, &error),
        (Ok(()), None) => fallback::expand(
            &input,
            &krate,
            &syn::Error::new_spanned(&input.ident, "`Credential` cannot be derived for this item"),
        ),
    };
    expanded.into()
}
