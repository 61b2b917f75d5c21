//! A token kept in a session (ID, access or refresh token). A JWS compact token — three
//! base64url segments, as almost every IdP issues its ID tokens and many their access and
//! refresh tokens — is held decoded, a quarter smaller, and re-encoded (about a microsecond)
//! when it is used; anything else is held as it came. Serialised, it is the original string.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One allocation, 16 bytes in the session: a tag byte, then either the token's text
/// (`OPAQUE`) or (`JWS`) the lengths of the decoded header and payload (two big-endian `u16`)
/// followed by the decoded header, payload and signature.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken(Box<[u8]>);

const OPAQUE: u8 = 0;
const JWS: u8 = 1;

impl StoredToken {
    pub fn new(token: String) -> Self {
        StoredToken(Self::compact(&token).unwrap_or_else(|| {
            let mut bytes = Vec::with_capacity(token.len() + 1);
            bytes.push(OPAQUE);
            bytes.extend_from_slice(token.as_bytes());
            bytes.into_boxed_slice()
        }))
    }

    /// The decoded form, when `token` is three base64url segments that encode back to exactly
    /// the same text (so `expose` always gives the original).
    fn compact(token: &str) -> Option<Box<[u8]>> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let mut bytes = Vec::with_capacity(5 + token.len() / 4 * 3 + 3);
        bytes.extend_from_slice(&[JWS, 0, 0, 0, 0]);
        let mut lens = [0u16; 2];
        for (i, part) in [h, p, s].into_iter().enumerate() {
            let before = bytes.len();
            URL_SAFE_NO_PAD.decode_vec(part, &mut bytes).ok()?;
            if let Some(len) = lens.get_mut(i) {
                *len = u16::try_from(bytes.len() - before).ok()?;
            }
        }
        bytes[1..3].copy_from_slice(&lens[0].to_be_bytes());
        bytes[3..5].copy_from_slice(&lens[1].to_be_bytes());
        let compact = StoredToken(bytes.into_boxed_slice());
        (compact.expose() == token).then_some(compact.0)
    }

    /// The token as the IdP issued it.
    pub fn expose(&self) -> Cow<'_, str> {
        match self.0.split_first() {
            Some((&JWS, rest)) if rest.len() >= 4 => {
                let header_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let payload_len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                let bytes = &rest[4..];
                let (h, rest) = bytes.split_at(header_len.min(bytes.len()));
                let (p, s) = rest.split_at(payload_len.min(rest.len()));
                let mut out = String::with_capacity(bytes.len() / 3 * 4 + 6);
                URL_SAFE_NO_PAD.encode_string(h, &mut out);
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(p, &mut out);
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(s, &mut out);
                Cow::Owned(out)
            }
            // Built from a `String` in `new`: always UTF-8.
            Some((_, text)) => String::from_utf8_lossy(text),
            None => Cow::Borrowed(""),
        }
    }
}

impl From<String> for StoredToken {
    fn from(token: String) -> Self {
        StoredToken::new(token)
    }
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for StoredToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expose())
    }
}

impl<'de> Deserialize<'de> for StoredToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(StoredToken::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_compact(t: &StoredToken) -> bool {
        t.0.first() == Some(&JWS)
    }

    #[test]
    fn jws_tokens_are_held_decoded_and_come_back_unchanged() {
        let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsImF1ZCI6ImMifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
        let t = StoredToken::new(jwt.to_owned());
        assert!(is_compact(&t));
        assert_eq!(t.expose(), jwt);
        assert!(t.0.len() * 4 <= jwt.len() * 3 + 40, "decoded is smaller");
        assert_eq!(std::mem::size_of::<Option<StoredToken>>(), 16);
        // Empty payload and signature segments (unsecured or detached forms) round-trip too.
        for odd in ["e30..", "e30.e30.", "..", "a.b.c"] {
            let t = StoredToken::new(odd.to_owned());
            assert_eq!(t.expose(), odd, "{odd}");
        }
    }

    #[test]
    fn anything_else_is_kept_as_it_came() {
        for opaque in [
            "8xLOxBtZp8",                // opaque access token
            "a.b",                       // two segments
            "a.b.c.d.e",                 // JWE compact: five segments
            "eyJ+.eyJ/.sig",             // standard base64 alphabet
            "eyJhbGciOiJub25lIn0=.e30.", // padding
            "e31.e30.x",                 // non-canonical trailing bits
            "ünïcode.e30.abc",
        ] {
            let t = StoredToken::new(opaque.to_owned());
            assert_eq!(t.expose(), opaque, "{opaque}");
        }
        assert!(!is_compact(&StoredToken::new("a.b".into())));
        assert!(!is_compact(&StoredToken::new("e31.e30.x".into())));
    }

    #[test]
    fn serialises_as_the_original_string_and_hides_in_debug() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let t = StoredToken::new(jwt.to_owned());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{jwt}\""));
        let back: StoredToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert_eq!(format!("{t:?}"), "<redacted>");
    }
}
