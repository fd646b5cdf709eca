//! The forms a secret value takes in text an action writes: as is, base64 (standard and URL-safe,
//! with and without padding), percent-encoded, JSON-escaped, and a Basic auth pair's base64.

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

/// A value as it is looked up: a secret's bytes, or a Basic auth credential's user and password,
/// borrowed from the credential that holds them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Probe<'a> {
    /// A secret value: masked in every form.
    Value(&'a [u8]),
    /// A Basic auth pair: masked as the base64 of `user:password`, the form an
    /// `Authorization: Basic` header carries (the password alone is masked as a value).
    BasicPair { user: &'a [u8], password: &'a [u8] },
}

impl Probe<'_> {
    /// Whether it is masked at all: a value long enough and not too long, and a pair whose user
    /// has no `:` (which would make the pair ambiguous).
    pub(crate) fn maskable(&self) -> bool {
        let (user, value) = match self {
            Self::Value(value) => (&[][..], value),
            Self::BasicPair { user, password } => (*user, password),
        };
        (MIN_MASKED_LEN..=MAX_MASKED_LEN).contains(&value.len()) && !user.contains(&b':')
    }
}

/// A value the masker knows: the bytes of a [`Probe`], owned and wiped on drop. No `Debug`: it
/// holds the value.
pub(crate) struct Secret {
    /// The value, or `user:password`.
    bytes: Zeroizing<Vec<u8>>,
    /// For a Basic auth pair, the length of its user.
    user_len: Option<usize>,
}

impl Secret {
    /// What `probe` borrows, owned.
    pub(crate) fn of(probe: Probe<'_>) -> Self {
        match probe {
            Probe::Value(value) => Self { bytes: Zeroizing::new(value.to_vec()), user_len: None },
            Probe::BasicPair { user, password } => {
                let mut pair = Zeroizing::new(Vec::with_capacity(user.len() + 1 + password.len()));
                pair.extend_from_slice(user);
                pair.push(b':');
                pair.extend_from_slice(password);
                Self { bytes: pair, user_len: Some(user.len()) }
            }
        }
    }

    /// It as a probe, to compare and hash it as one.
    pub(crate) fn probe(&self) -> Probe<'_> {
        match self.user_len {
            None => Probe::Value(&self.bytes),
            Some(user_len) => Probe::BasicPair {
                user: &self.bytes[..user_len],
                password: &self.bytes[user_len + 1..],
            },
        }
    }

    /// Its size in bytes, as counted against the masker's bound.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Every form to mask, each once. Forms are UTF-8, so a match in text always falls on
    /// character boundaries and masking text leaves it valid UTF-8.
    pub(crate) fn forms(&self) -> Vec<Zeroizing<String>> {
        let mut forms = Vec::with_capacity(8);
        if self.user_len.is_some() {
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
        let secret = Secret::of(Probe::Value(b"p@ss w/rd\"+"));
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
        let pair = Probe::BasicPair { user: b"octocat", password: b"hunter22" };
        assert_eq!(forms(&Secret::of(pair)), ["b2N0b2NhdDpodW50ZXIyMg=="]);
        assert!(Secret::of(pair).probe() == pair);
        assert!(!Probe::BasicPair { user: b"a:b", password: b"hunter22" }.maskable());
    }

    #[test]
    fn values_too_short_or_too_long_are_not_masked() {
        assert!(!Probe::Value(b"admin").maskable());
        assert!(Probe::Value(b"admin1").maskable());
        assert!(!Probe::Value(&vec![b'x'; MAX_MASKED_LEN + 1]).maskable());
        assert!(!Probe::BasicPair { user: b"octocat", password: b"short" }.maskable());
    }

    #[test]
    fn bytes_that_are_not_text_are_masked_only_in_base64() {
        let secret = Secret::of(Probe::Value(&[0xff, 0xfe, 0x00, 0x01, 0x02, 0x03]));
        assert_eq!(forms(&secret), ["//4AAQID", "__4AAQID"]);
    }
}
