//! A borrowed model of the derive input that keeps the original syn nodes for error spans.

use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Generics, Ident, Type};

use crate::attr::{Container, FieldAttrs};
use crate::ctxt::Ctxt;

/// The struct being derived.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    pub(crate) attrs: Container,
    pub(crate) fields: Vec<Field<'a>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: FieldAttrs,
}

impl<'a> Input<'a> {
    /// Reads the input. Returns `None` (with an error recorded) for anything but a struct with
    /// named fields.
    pub(crate) fn from_syn(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = Container::from_attrs(cx, &input.attrs);
        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named,
                Fields::Unnamed(fields) => {
                    cx.error_spanned_by(
                        fields,
                        "`Credential` needs named fields: each field's name is stored with its value",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(&input.ident, "`Credential` cannot be derived for a unit struct: a credential needs fields");
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "`Credential` can only be derived for structs, not enums",
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "`Credential` can only be derived for structs, not unions",
                );
                return None;
            }
        };
        let fields = named
            .named
            .iter()
            .filter_map(|field| {
                Some(Field {
                    ident: field.ident.as_ref()?,
                    ty: &field.ty,
                    attrs: FieldAttrs::from_attrs(cx, &field.attrs),
                })
            })
            .collect();
        Some(Self { ident: &input.ident, generics: &input.generics, attrs, fields })
    }
}

impl Field<'_> {
    /// The name stored with the value: `rename`, else the Rust name.
    pub(crate) fn stored_name(&self) -> String {
        match self.attrs.rename.get() {
            Some(rename) => rename.value(),
            None => self.rust_name(),
        }
    }

    /// The Rust name without a raw-identifier prefix (`r#type` → `type`).
    pub(crate) fn rust_name(&self) -> String {
        self.ident.unraw().to_string()
    }

    pub(crate) fn is_secret(&self) -> bool {
        self.attrs.secret.is_some()
    }
}
