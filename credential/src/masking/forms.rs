//! The forms a secret value takes in text an action writes: as is, base64 (standard and URL-safe,
//! with and without padding), percent-encoded, JSON-escaped, and a Basic auth pair's base64.

use std::hash::{Hash, Hasher};

use base64ct::{Base64, Base64Unpadded, Base64Url, Base64UrlUnpadded, Encoding};
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

/// The shortest value masked, in bytes. Shorter values are common words and numbers (`admin`,
/// `true`, a port): masking them would garble every log line that happens to contain them, and a
/// secret that short is guessed faster than it is leaked.
pub const MIN_MASKED_LEN: usize = 6;

/// The longest value masked, in bytes (a PEM private key is about 3 KiB). A writer holds back up
/// to the longest form of a masked value, so this also bounds what a writer holds.
pub const MAX_MASKED_LEN: usize = 16 * 1024;

/// Everything but RFC 3986's unreserved characters: `encodeURIComponent`, and how the built-in
/// `Database` kind writes a password into its URL.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The WHATWG `application/x-www-form-urlencoded` set: form bodies, as OAuth 2.0 token requests
/// send a client secret.
const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_');

/// The WHATWG userinfo set: what URL libraries write for a password set on a URL.
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'=')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'|');

/// A value the masker knows, with which of its forms to mask. No `Debug`: it holds the value.
pub(crate) struct Secret {
    bytes: Zeroizing<Vec<u8>>,
    /// `user:password` of a Basic auth credential, masked only as its base64: the form an
    /// `Authorization: Basic` header carries (the password alone is masked as a value).
    basic_pair: bool,
}

impl Secret {
    /// `value` as a secret to mask, if it is long enough and not too long.
    pub(crate) fn value(value: &[u8]) -> Option<Self> {
        maskable(value).then(|| Self { bytes: Zeroizing::new(value.to_vec()), basic_pair: false })
    }

    /// The Basic auth pair of `user` and `password`, if the password is maskable.
    pub(crate) fn basic_pair(user: &str, password: &[u8]) -> Option<Self> {
        if !maskable(password) || user.contains(':') {
            return None;
        }
        let mut pair = Zeroizing::new(Vec::with_capacity(user.len() + 1 + password.len()));
        pair.extend_from_slice(user.as_bytes());
        pair.push(b':');
        pair.extend_from_slice(password);
        Some(Self { bytes: pair, basic_pair: true })
    }

    /// Its size in bytes, as counted against the masker's bound.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Every form to mask, each once. Forms are UTF-8, so a match in text always falls on
    /// character boundaries and masking text leaves it valid UTF-8.
    pub(crate) fn forms(&self) -> Vec<Zeroizing<String>> {
        let mut forms = Vec::with_capacity(8);
        if self.basic_pair {
            forms.push(Zeroizing::new(Base64::encode_string(&self.bytes)));
            return forms;
        }
        push_base64(&mut forms, &self.bytes);
        if let Ok(text) = std::str::from_utf8(&self.bytes) {
            forms.push(Zeroizing::new(text.to_owned()));
            for set in [COMPONENT, FORM, USERINFO] {
                forms.push(Zeroizing::new(utf8_percent_encode(text, set).to_string()));
            }
            if let Ok(quoted) = serde_json::to_string(text) {
                let quoted = Zeroizing::new(quoted);
                forms.push(Zeroizing::new(quoted[1..quoted.len() - 1].to_owned()));
            }
        }
        forms.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        forms.dedup_by(|a, b| a.as_str() == b.as_str());
        forms
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.basic_pair == other.basic_pair && self.bytes[..] == other.bytes[..]
    }
}

impl Eq for Secret {}

impl Hash for Secret {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.basic_pair.hash(state);
        self.bytes[..].hash(state);
    }
}

fn maskable(value: &[u8]) -> bool {
    (MIN_MASKED_LEN..=MAX_MASKED_LEN).contains(&value.len())
}

fn push_base64(forms: &mut Vec<Zeroizing<String>>, bytes: &[u8]) {
    forms.push(Zeroizing::new(Base64::encode_string(bytes)));
    forms.push(Zeroizing::new(Base64Unpadded::encode_string(bytes)));
    forms.push(Zeroizing::new(Base64Url::encode_string(bytes)));
    forms.push(Zeroizing::new(Base64UrlUnpadded::encode_string(bytes)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(secret: &Secret) -> Vec<String> {
        secret.forms().iter().map(|form| form.as_str().to_owned()).collect()
    }

    #[test]
    fn a_value_is_masked_as_is_and_in_each_encoding_once() {
        let secret = Secret::value(b"p@ss w/rd\"+").unwrap();
        let forms = forms(&secret);
        for expected in [
            "p@ss w/rd\"+",
            "cEBzcyB3L3JkIis=",
            "cEBzcyB3L3JkIis",
            "cEBzcyB3L3JkIis=",
            "p%40ss%20w%2Frd%22%2B",
            "p%40ss%20w%2Frd%22+",
            "p@ss w/rd\\\"+",
        ] {
            assert!(forms.iter().any(|form| form == expected), "{expected} missing");
        }
        let mut unique = forms.clone();
        unique.dedup();
        assert_eq!(unique, forms);
    }

    #[test]
    fn a_basic_pair_is_masked_as_its_header_value() {
        let secret = Secret::basic_pair("octocat", b"hunter22").unwrap();
        assert_eq!(forms(&secret), ["b2N0b2NhdDpodW50ZXIyMg=="]);
        assert!(Secret::basic_pair("a:b", b"hunter22").is_none());
    }

    #[test]
    fn values_too_short_or_too_long_are_not_masked() {
        assert!(Secret::value(b"admin").is_none());
        assert!(Secret::value(b"admin1").is_some());
        assert!(Secret::value(&vec![b'x'; MAX_MASKED_LEN + 1]).is_none());
        assert!(Secret::basic_pair("octocat", b"short").is_none());
    }

    #[test]
    fn bytes_that_are_not_text_are_masked_only_in_base64() {
        let secret = Secret::value(&[0xff, 0xfe, 0x00, 0x01, 0x02, 0x03]).unwrap();
        assert_eq!(forms(&secret), ["//4AAQID", "__4AAQID"]);
    }
}
