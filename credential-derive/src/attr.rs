//! Typed attributes: `#[credential(...)]` on the struct, `#[credential(...)]` and `#[secret]` on
//! fields. Unknown and duplicate keys are errors, recorded without stopping.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Expr, LitInt, LitStr, Path, Token};

use crate::ctxt::Ctxt;
use crate::symbol::*;

/// A setting that may be given once; the path that set it is kept for error spans.
pub(crate) struct Setting<T> {
    name: &'static str,
    value: Option<(Path, T)>,
}

impl<T> Setting<T> {
    fn new(name: &'static str) -> Self {
        Self { name, value: None }
    }

    fn set(&mut self, cx: &Ctxt, at: &Path, value: T) {
        if self.value.is_some() {
            cx.error_spanned_by(at, format!("duplicate `{}`", self.name));
        } else {
            self.value = Some((at.clone(), value));
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(_, value)| value)
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        self.value.as_ref().map(|(path, _)| path)
    }

    pub(crate) fn is_set(&self) -> bool {
        self.value.is_some()
    }
}

/// `#[credential(kind = "...", crate = "...", validate = path)]` on the struct.
pub(crate) struct Container {
    pub(crate) kind: Setting<LitStr>,
    pub(crate) krate: Setting<Path>,
    pub(crate) validate: Setting<Path>,
}

impl Container {
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut container = Self {
            kind: Setting::new(KIND),
            krate: Setting::new(CRATE),
            validate: Setting::new(VALIDATE),
        };
        for attr in attrs {
            if attr.path().is_ident(SECRET) {
                cx.error_spanned_by(attr, "`#[secret]` goes on a field, not on the struct");
                continue;
            }
            if !attr.path().is_ident(CREDENTIAL) {
                continue;
            }
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(KIND) {
                    container.kind.set(cx, &meta.path, meta.value()?.parse()?);
                } else if meta.path.is_ident(CRATE) {
                    container.krate.set(cx, &meta.path, parse_path_value(&meta)?);
                } else if meta.path.is_ident(VALIDATE) {
                    if !meta.input.peek(Token![=]) {
                        cx.error_spanned_by(
                            &meta.path,
                            "on the struct, `validate` names a function: `validate = path::to_fn`",
                        );
                        return skip_value(&meta);
                    }
                    container.validate.set(cx, &meta.path, parse_path_value(&meta)?);
                } else {
                    unknown_key(cx, &meta, "`kind`, `crate` or `validate`")?;
                }
                Ok(())
            });
            if let Err(error) = parsed {
                cx.syn_error(error);
            }
        }
        container
    }
}

/// `#[secret]` or `#[secret(reveal_first = N, reveal_last = N)]`.
pub(crate) struct Secret {
    pub(crate) reveal_first: Setting<u8>,
    pub(crate) reveal_last: Setting<u8>,
}

/// `#[credential(...)]` and `#[secret]` on a field.
pub(crate) struct FieldAttrs {
    pub(crate) secret: Option<Secret>,
    pub(crate) rename: Setting<LitStr>,
    pub(crate) default: Setting<()>,
    pub(crate) expires_at: Setting<()>,
    pub(crate) rules: Vec<Rule>,
}

/// One validation rule and the path that named it (errors about the rule point there).
pub(crate) struct Rule {
    pub(crate) name: Path,
    pub(crate) kind: RuleKind,
}

pub(crate) enum RuleKind {
    NonEmpty,
    Length { min: Option<LitInt>, max: Option<LitInt> },
    Range { min: Option<Box<Expr>>, max: Option<Box<Expr>> },
    Url,
    Pattern(LitStr),
    Custom(Path),
}

impl FieldAttrs {
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut field = Self {
            secret: None,
            rename: Setting::new(RENAME),
            default: Setting::new(DEFAULT),
            expires_at: Setting::new(EXPIRES_AT),
            rules: Vec::new(),
        };
        for attr in attrs {
            if attr.path().is_ident(SECRET) {
                field.parse_secret(cx, attr);
            } else if attr.path().is_ident(CREDENTIAL) {
                let parsed = attr.parse_nested_meta(|meta| field.parse_key(cx, &meta));
                if let Err(error) = parsed {
                    cx.syn_error(error);
                }
            }
        }
        field
    }

    fn parse_secret(&mut self, cx: &Ctxt, attr: &Attribute) {
        if self.secret.is_some() {
            cx.error_spanned_by(attr, "duplicate `#[secret]`");
            return;
        }
        let mut secret = Secret {
            reveal_first: Setting::new(REVEAL_FIRST),
            reveal_last: Setting::new(REVEAL_LAST),
        };
        if let syn::Meta::NameValue(name_value) = &attr.meta {
            cx.error_spanned_by(
                name_value,
                "`#[secret]` takes no value; masks are `#[secret(reveal_last = 4)]`",
            );
        } else if let syn::Meta::List(_) = &attr.meta {
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(REVEAL_FIRST) {
                    secret.reveal_first.set(cx, &meta.path, parse_u8(&meta)?);
                } else if meta.path.is_ident(REVEAL_LAST) {
                    secret.reveal_last.set(cx, &meta.path, parse_u8(&meta)?);
                } else {
                    unknown_key(cx, &meta, "`reveal_first` or `reveal_last`")?;
                }
                Ok(())
            });
            if let Err(error) = parsed {
                cx.syn_error(error);
            }
        }
        self.secret = Some(secret);
    }

    fn parse_key(&mut self, cx: &Ctxt, meta: &ParseNestedMeta) -> syn::Result<()> {
        if meta.path.is_ident(RENAME) {
            self.rename.set(cx, &meta.path, meta.value()?.parse()?);
        } else if meta.path.is_ident(DEFAULT) {
            self.default.set(cx, &meta.path, ());
        } else if meta.path.is_ident(EXPIRES_AT) {
            self.expires_at.set(cx, &meta.path, ());
        } else if meta.path.is_ident(VALIDATE) {
            if !meta.input.peek(syn::token::Paren) {
                cx.error_spanned_by(
                    &meta.path,
                    "field rules are a list: `validate(non_empty, length(max = 64))`",
                );
                return skip_value(meta);
            }
            meta.parse_nested_meta(|rule| self.parse_rule(cx, &rule))?;
        } else if meta.path.is_ident(SECRET) {
            cx.error_spanned_by(&meta.path, "`secret` is its own attribute: `#[secret]`");
        } else {
            unknown_key(cx, meta, "`rename`, `default`, `expires_at` or `validate(...)`")?;
        }
        Ok(())
    }

    fn parse_rule(&mut self, cx: &Ctxt, meta: &ParseNestedMeta) -> syn::Result<()> {
        let path = &meta.path;
        let kind = if path.is_ident(NON_EMPTY) {
            RuleKind::NonEmpty
        } else if path.is_ident(URL) {
            RuleKind::Url
        } else if path.is_ident(PATTERN) {
            RuleKind::Pattern(meta.value()?.parse()?)
        } else if path.is_ident(CUSTOM) {
            RuleKind::Custom(parse_path_value(meta)?)
        } else if path.is_ident(LENGTH) {
            let (min, max) = parse_bounds(cx, meta, |value| value.parse::<LitInt>())?;
            RuleKind::Length { min, max }
        } else if path.is_ident(RANGE) {
            let (min, max) = parse_bounds(cx, meta, |value| value.parse::<Expr>().map(Box::new))?;
            RuleKind::Range { min, max }
        } else {
            unknown_key(
                cx,
                meta,
                "`non_empty`, `length(..)`, `range(..)`, `url`, `pattern = \"..\"` or `custom = path`",
            )?;
            return Ok(());
        };
        if self.rules.iter().any(|rule| rule.name.get_ident() == path.get_ident()) {
            cx.error_spanned_by(path, format!("duplicate rule `{}`", path.to_token_stream()));
        } else {
            self.rules.push(Rule { name: path.clone(), kind });
        }
        Ok(())
    }
}

/// `(min = .., max = ..)` after `length` or `range`; either bound may be left out (the checks
/// require at least one).
fn parse_bounds<T>(
    cx: &Ctxt,
    meta: &ParseNestedMeta,
    parse_value: impl Fn(ParseStream) -> syn::Result<T>,
) -> syn::Result<(Option<T>, Option<T>)> {
    let (mut min, mut max) = (Setting::new(MIN), Setting::new(MAX));
    if !meta.input.peek(syn::token::Paren) {
        return Ok((None, None));
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let bounds = syn::meta::parser(|bound| {
        if bound.path.is_ident(MIN) {
            min.set(cx, &bound.path, parse_value(bound.value()?)?);
        } else if bound.path.is_ident(MAX) {
            max.set(cx, &bound.path, parse_value(bound.value()?)?);
        } else {
            unknown_key(cx, &bound, "`min` or `max`")?;
        }
        Ok(())
    });
    bounds.parse2(content.parse::<TokenStream>()?)?;
    Ok((min.value.map(|(_, value)| value), max.value.map(|(_, value)| value)))
}

/// Records an unknown key and skips its value so parsing continues with the next key.
fn unknown_key(cx: &Ctxt, meta: &ParseNestedMeta, expected: &str) -> syn::Result<()> {
    let name = meta.path.to_token_stream().to_string().replace(' ', "");
    cx.error_spanned_by(&meta.path, format!("unknown key `{name}`; expected {expected}"));
    skip_value(meta)
}

fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// `key = path` or `key = "path"`.
fn parse_path_value(meta: &ParseNestedMeta) -> syn::Result<Path> {
    let value = meta.value()?;
    if value.peek(LitStr) { value.parse::<LitStr>()?.parse() } else { value.parse() }
}

fn parse_u8(meta: &ParseNestedMeta) -> syn::Result<u8> {
    let literal: LitInt = meta.value()?.parse()?;
    literal.base10_parse::<u8>().map_err(|_| {
        syn::Error::new_spanned(&literal, "expected a number of characters from 0 to 255")
    })
}
