//! Taking the password out of a connection URL before anything parses it, so no parser ever
//! holds a copy of it that would be freed without being wiped (the `url` crate's buffers, on its
//! success and error paths alike).

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// A connection URL without its password, and the password's encoded text.
pub(super) struct Scrubbed<'a> {
    /// The URL with the password left out of the user info and the query: safe to parse.
    pub(super) public: String,
    /// The password from the user info (`user:password@`), percent-encoded.
    pub(super) userinfo_password: Option<&'a str>,
    /// The value of a `password` query parameter, form-encoded.
    pub(super) query_password: Option<&'a str>,
    /// The query held another secret parameter (`sslpassword`, ...), left out of `public`.
    pub(super) other_secret: bool,
}

/// Query parameters that hold secrets but have no place in a [`Database`](super::Database):
/// refused, and kept from the parser all the same.
const OTHER_SECRET_PARAMETERS: [&str; 3] = ["sslpassword", "sslkey_password", "passfile"];

/// A query parameter's name as the URL parser would decode it (`%xx`, `+`), for comparison.
fn decoded_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Splits the password out of `url`.
pub(super) fn scrub(url: &str) -> Scrubbed<'_> {
    let (before_fragment, fragment) = match url.find('#') {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let (before_query, query) = match before_fragment.find('?') {
        Some(at) => (&before_fragment[..at], Some(&before_fragment[at + 1..])),
        None => (before_fragment, None),
    };
    let mut public = String::with_capacity(url.len());
    let mut userinfo_password = None;
    match before_query.find("://") {
        Some(scheme_end) => {
            let authority_start = scheme_end + 3;
            let rest = &before_query[authority_start..];
            let authority_len = rest.find('/').unwrap_or(rest.len());
            let authority = &rest[..authority_len];
            public.push_str(&before_query[..authority_start]);
            match authority.rfind('@') {
                Some(at) => {
                    let userinfo = &authority[..at];
                    match userinfo.find(':') {
                        Some(colon) => {
                            public.push_str(&userinfo[..colon]);
                            userinfo_password = Some(&userinfo[colon + 1..]);
                        }
                        None => public.push_str(userinfo),
                    }
                    public.push_str(&authority[at..]);
                }
                None => public.push_str(authority),
            }
            public.push_str(&rest[authority_len..]);
        }
        None => public.push_str(before_query),
    }
    let mut query_password = None;
    let mut other_secret = false;
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let key = decoded_key(key);
                if key.eq_ignore_ascii_case("password") {
                    query_password = Some(value);
                    return false;
                }
                if OTHER_SECRET_PARAMETERS.iter().any(|secret| key.eq_ignore_ascii_case(secret)) {
                    other_secret = true;
                    return false;
                }
                true
            })
            .collect();
        if !kept.is_empty() {
            public.push('?');
            public.push_str(&kept.join("&"));
        }
    }
    public.push_str(fragment);
    Scrubbed { public, userinfo_password, query_password, other_secret }
}

/// Decodes a password from its percent-encoding (with `+` as a space in a query value) into a
/// buffer reserved at its final size, which is wiped when dropped.
pub(super) fn decode_password(encoded: &str, plus_is_space: bool) -> Result<SecretString> {
    let bytes = encoded.as_bytes();
    let mut decoded = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut at = 0;
    while at < bytes.len() {
        let byte = match bytes[at] {
            b'%' if at + 2 < bytes.len() && hex(bytes[at + 1]).is_some() => {
                let high = hex(bytes[at + 1]).unwrap_or(0);
                match hex(bytes[at + 2]) {
                    Some(low) => {
                        at += 2;
                        high << 4 | low
                    }
                    None => b'%',
                }
            }
            b'+' if plus_is_space => b' ',
            other => other,
        };
        decoded.push(byte);
        at += 1;
    }
    let text = std::str::from_utf8(&decoded)
        .map_err(|_| Error::InvalidUrl { reason: "password is not valid percent-encoded UTF-8" })?;
    Ok(SecretString::new(Box::from(text)))
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_password_never_reaches_the_public_text() {
        let scrubbed = scrub(
            "postgresql://app:p%40ss:w@db.internal:5432/main?sslmode=require&password=q+r#frag",
        );
        assert_eq!(scrubbed.public, "postgresql://app@db.internal:5432/main?sslmode=require#frag");
        assert_eq!(scrubbed.userinfo_password, Some("p%40ss:w"));
        assert_eq!(scrubbed.query_password, Some("q+r"));
        assert!(!scrubbed.other_secret);
        let encoded = scrub("postgresql://app@db/main?pass%77ord=x&SSL%70assword=y&a=b");
        assert_eq!(encoded.public, "postgresql://app@db/main?a=b");
        assert_eq!(encoded.query_password, Some("x"));
        assert!(encoded.other_secret);
        assert_eq!(decode_password("p%40ss:w", false).unwrap().expose_secret(), "p@ss:w");
        assert_eq!(decode_password("q+r%2", true).unwrap().expose_secret(), "q r%2");
        assert!(decode_password("%ff", false).is_err());
    }
}
