//! Code generation from the checked model.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericParam, Generics, LitByteStr, Path, WhereClause};

use crate::ast::Field;
use crate::attr::{Rule, RuleKind};
use crate::valid::Checked;

pub(crate) fn expand(checked: &Checked) -> TokenStream {
    let input = &checked.input;
    let krate = &checked.krate;
    let private = quote!(#krate::__private);
    let ident = input.ident;
    let kind = &checked.kind;

    let generics = with_field_bounds(input.generics, &input.fields, &private);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    let schema = input.fields.iter().map(|field| field_schema(field, &private));
    let validate = validate_body(checked, &private);
    let expires_at = expires_at_body(&input.fields, &private);
    let encode = encode_body(&input.fields, &private);
    let decode = decode_body(&input.fields, &private);
    let field_at = field_at_body(&input.fields, &private);
    let text_encoders = input.fields.iter().enumerate().map(|(index, field)| {
        let ty = field.ty;
        quote!(#index => ::core::option::Option::Some(<#ty as #private::FieldCodec>::encode_text),)
    });
    let debug = debug_body(ident, &input.fields, &private);
    // A generic type has no one kind to link: it is registered with `register::<T<..>>()`.
    let linked = input.generics.params.is_empty().then(|| {
        quote! {
            fn __linked_decoder() -> ::core::option::Option<#private::LinkedDecoder> {
                #[allow(unused_imports)]
                use #private::{LinkedByCredential as _, NotLinked as _};
                (&#private::Probe::<#ident>::new()).linked()
            }
            #private::inventory::submit! { #private::LinkedKind::new(__linked_decoder) }
        }
    });

    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #private::Credential for #ident #ty_generics #where_clause {
                const KIND: &'static str = #kind;
                const FIELDS: &'static [#private::FieldSchema] = &[#(#schema),*];

                fn validate(&self) -> ::core::result::Result<(), #private::ValidationErrors> {
                    #validate
                }

                fn expires_at(&self) -> ::core::option::Option<#private::DateTime<#private::Utc>> {
                    #expires_at
                }

                fn encode(&self) -> #private::Zeroizing<::std::vec::Vec<u8>> {
                    #encode
                }

                fn decode(__bytes: &[u8]) -> #private::Result<Self> {
                    #decode
                }

                fn field_at(&self, __index: usize) -> ::core::option::Option<#private::FieldRef<'_>> {
                    #field_at
                }

                fn text_encoder(__index: usize) -> ::core::option::Option<#private::TextEncoder> {
                    match __index {
                        #(#text_encoders)*
                        _ => ::core::option::Option::None,
                    }
                }
            }

            #[automatically_derived]
            impl #impl_generics ::core::fmt::Debug for #ident #ty_generics #where_clause {
                fn fmt(&self, __formatter: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    #debug
                }
            }

            #linked
        };
    }
}

/// The struct's generics plus, spanned at each field's type, the trait that type must implement:
/// a wrong field type is reported on the field.
fn with_field_bounds(generics: &Generics, fields: &[Field], private: &TokenStream) -> Generics {
    let mut generics = generics.clone();
    let type_params: Vec<_> = generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(param) => Some(param.ident.clone()),
            _ => None,
        })
        .collect();
    let where_clause: &mut WhereClause = generics.make_where_clause();
    for param in type_params {
        where_clause
            .predicates
            .push(syn::parse_quote!(#param: ::core::marker::Send + ::core::marker::Sync + 'static));
    }
    for field in fields {
        let ty = field.ty;
        let private = respan(private, ty.span());
        let bound = if field.is_secret() {
            quote_spanned!(ty.span()=> #ty: #private::SecretField)
        } else {
            quote_spanned!(ty.span()=> #ty: #private::PlainField)
        };
        where_clause.predicates.push(syn::parse_quote!(#bound));
        if field.attrs.expires_at.is_set() {
            let expiry = quote_spanned!(ty.span()=> #ty: #private::ExpiryField);
            where_clause.predicates.push(syn::parse_quote!(#expiry));
        }
    }
    generics
}

fn mask(field: &Field, private: &TokenStream) -> TokenStream {
    let (first, last) = field.attrs.secret.as_ref().map_or((0, 0), |secret| {
        (
            secret.reveal_first.get().copied().unwrap_or(0),
            secret.reveal_last.get().copied().unwrap_or(0),
        )
    });
    quote!(#private::Mask { reveal_first: #first, reveal_last: #last })
}

fn field_schema(field: &Field, private: &TokenStream) -> TokenStream {
    let name = field.stored_name();
    let rust_name = field.rust_name();
    let secret = if field.is_secret() {
        let mask = mask(field, private);
        quote!(::core::option::Option::Some(#mask))
    } else {
        quote!(::core::option::Option::None)
    };
    // Optional as the decoder treats it: an `Option` (by its name) or a field with a default.
    let optional = field.attrs.default.is_set() || is_option(field.ty);
    let optional = optional.then(|| quote!(.optional()));
    quote!(#private::FieldSchema::new(#name, #rust_name, #secret) #optional)
}

/// Whether `ty` is written as an `Option<..>`.
fn is_option(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(path) => {
            path.path.segments.last().is_some_and(|segment| segment.ident == "Option")
        }
        syn::Type::Group(group) => is_option(&group.elem),
        syn::Type::Paren(paren) => is_option(&paren.elem),
        _ => false,
    }
}

fn validate_body(checked: &Checked, private: &TokenStream) -> TokenStream {
    let checks = checked.input.fields.iter().flat_map(|field| {
        field.attrs.rules.iter().map(move |rule| rule_check(field, rule, private))
    });
    let whole = checked.input.attrs.validate.get().map(
        |path| quote_spanned!(path.span()=> #private::rules::whole(&mut __errors, #path(self));),
    );
    quote! {
        let mut __errors = #private::ValidationErrors::new();
        #(#checks)*
        #whole
        __errors.into_result()
    }
}

/// One rule's check. Every token of the call is spanned at the rule, so a rule that does not fit
/// the field's type is reported on the rule.
fn rule_check(field: &Field, rule: &Rule, private: &TokenStream) -> TokenStream {
    let ident = field.ident;
    let name = field.stored_name();
    let span = rule.name.span();
    let private = respan(private, span);
    let rules = quote_spanned!(span=> #private::rules);
    let check = match &rule.kind {
        RuleKind::NonEmpty => {
            quote_spanned!(span=> #rules::non_empty(&mut __errors, #name, __value);)
        }
        RuleKind::Length { min, max } => {
            let (min, max) = (optional(min.as_ref()), optional(max.as_ref()));
            quote_spanned!(span=> #rules::length(&mut __errors, #name, __value, #min, #max);)
        }
        RuleKind::Range { min, max } => {
            let (min, max) = (optional(min.as_ref()), optional(max.as_ref()));
            quote_spanned!(span=> #rules::range(&mut __errors, #name, __value, #min, #max);)
        }
        RuleKind::Url => quote_spanned!(span=> #rules::url(&mut __errors, #name, __value);),
        RuleKind::Pattern(source) => quote_spanned! {span=>
            static __PATTERN: #private::LazyLock<::core::option::Option<#private::Regex>> =
                #private::LazyLock::new(|| #private::compile_pattern(#source));
            #rules::pattern(&mut __errors, #name, __value, __PATTERN.as_ref(), #source);
        },
        RuleKind::Custom(path) => {
            let rule_name = path_name(path);
            quote_spanned!(path.span()=> #rules::custom(&mut __errors, #name, #rule_name, #path(__value));)
        }
    };
    quote! {
        {
            let __value = &self.#ident;
            #check
        }
    }
}

/// `tokens` with every span set to `span`, so errors in generated code that names them point
/// at the user's token instead of the derive.
fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut respanned = Group::new(group.delimiter(), respan(&group.stream(), span));
                respanned.set_span(span);
                token = TokenTree::Group(respanned);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

fn optional(value: Option<&(impl ToTokens + Spanned)>) -> TokenStream {
    match value {
        Some(value) => quote_spanned!(value.span()=> ::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

fn path_name(path: &Path) -> String {
    path.segments.last().map(|segment| segment.ident.to_string()).unwrap_or_default()
}

fn expires_at_body(fields: &[Field], private: &TokenStream) -> TokenStream {
    match fields.iter().find(|field| field.attrs.expires_at.is_set()) {
        Some(field) => {
            let ident = field.ident;
            quote!(#private::ExpiryField::expiry(&self.#ident))
        }
        None => quote!(::core::option::Option::None),
    }
}

fn encode_body(fields: &[Field], private: &TokenStream) -> TokenStream {
    let count = fields.len();
    let writes = fields.iter().map(|field| {
        let ident = field.ident;
        let name = field.stored_name();
        quote!(#private::write_field(__writer, #name, &self.#ident);)
    });
    quote! {
        #private::encode(<Self as #private::Credential>::KIND, #count, |__writer: &mut #private::Writer| {
            #(#writes)*
        })
    }
}

fn decode_body(fields: &[Field], private: &TokenStream) -> TokenStream {
    let slots: Vec<_> = (0..fields.len()).map(|index| format_ident!("__field{}", index)).collect();
    let declarations = fields.iter().zip(&slots).map(|(field, slot)| {
        let ty = field.ty;
        quote!(let mut #slot: ::core::option::Option<#ty> = ::core::option::Option::None;)
    });
    let arms = fields.iter().zip(&slots).map(|(field, slot)| {
        let name = field.stored_name();
        let bytes = LitByteStr::new(name.as_bytes(), Span::call_site());
        quote!(#bytes => #private::decode_field(&mut #slot, #name, __reader),)
    });
    let finishes = fields.iter().zip(&slots).map(|(field, slot)| {
        let ident = field.ident;
        let name = field.stored_name();
        match field.attrs.default.path() {
            Some(default) => {
                let private = respan(private, default.span());
                let slot = respan(&slot.to_token_stream(), default.span());
                quote_spanned!(default.span()=> #ident: #private::or_default(#slot))
            }
            None => quote!(#ident: #private::required(<Self as #private::Credential>::KIND, #slot, #name)?),
        }
    });
    quote! {
        #(#declarations)*
        #private::decode(<Self as #private::Credential>::KIND, __bytes, |__name: &[u8], __reader: &mut #private::Reader<'_>| {
            match __name {
                #(#arms)*
                _ => ::core::result::Result::Ok(false),
            }
        })?;
        ::core::result::Result::Ok(Self { #(#finishes),* })
    }
}

fn field_at_body(fields: &[Field], private: &TokenStream) -> TokenStream {
    let arms = fields.iter().enumerate().map(|(index, field)| {
        let ident = field.ident;
        let value = if field.is_secret() {
            let mask = mask(field, private);
            quote!(#private::secret_ref(&self.#ident, #mask))
        } else {
            quote!(#private::plain_ref(&self.#ident))
        };
        quote!(#index => ::core::option::Option::Some(#value),)
    });
    quote! {
        match __index {
            #(#arms)*
            _ => ::core::option::Option::None,
        }
    }
}

fn debug_body(ident: &syn::Ident, fields: &[Field], private: &TokenStream) -> TokenStream {
    let name = ident.to_string();
    let entries = fields.iter().map(|field| {
        let ident = field.ident;
        let rust_name = field.rust_name();
        if field.is_secret() {
            let mask = mask(field, private);
            quote!(.field(#rust_name, &#private::redacted_secret(&self.#ident, #mask)))
        } else {
            quote!(.field(#rust_name, &self.#ident))
        }
    });
    quote!(__formatter.debug_struct(#name) #(#entries)* .finish())
}
