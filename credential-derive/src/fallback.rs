//! What the derive emits when the input has mistakes: the errors, plus stub impls so the rest of
//! the crate type-checks and the user sees the real mistakes instead of a cascade of
//! "`Credential` is not implemented".

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, GenericParam, Path};

pub(crate) fn expand(input: &DeriveInput, krate: &Path, error: &syn::Error) -> TokenStream {
    let errors = error.to_compile_error();
    // A stub for a type with lifetimes would add its own error about `'static`.
    if input.generics.lifetimes().next().is_some() {
        return errors;
    }
    let private = quote!(#krate::__private);
    let ident = &input.ident;
    let mut generics = input.generics.clone();
    let type_params: Vec<_> = generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(param) => Some(param.ident.clone()),
            _ => None,
        })
        .collect();
    let where_clause = generics.make_where_clause();
    for param in type_params {
        where_clause
            .predicates
            .push(syn::parse_quote!(#param: ::core::marker::Send + ::core::marker::Sync + 'static));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        #errors
        #[doc(hidden)]
        const _: () = {
            impl #impl_generics #private::Credential for #ident #ty_generics #where_clause {
                const KIND: &'static str = "";
                const FIELDS: &'static [#private::FieldSchema] = &[];
                fn validate(&self) -> ::core::result::Result<(), #private::ValidationErrors> {
                    ::core::unreachable!()
                }
                fn expires_at(&self) -> ::core::option::Option<#private::DateTime<#private::Utc>> {
                    ::core::unreachable!()
                }
                fn encode(&self) -> #private::Zeroizing<::std::vec::Vec<u8>> {
                    ::core::unreachable!()
                }
                fn decode(_: &[u8]) -> #private::Result<Self> {
                    ::core::unreachable!()
                }
                fn field_at(&self, _: usize) -> ::core::option::Option<#private::FieldRef<'_>> {
                    ::core::unreachable!()
                }
            }
            impl #impl_generics ::core::fmt::Debug for #ident #ty_generics #where_clause {
                fn fmt(&self, _: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    ::core::unreachable!()
                }
            }
        };
    }
}
