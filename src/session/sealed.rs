//! Sealing cookie values: AES-256-GCM authenticated encryption (cookie's private jar) with a key
//! derived from the session secret, bound to the cookie name.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cookie::{Cookie, CookieJar, Key};
use sha2::{Digest, Sha256};

/// Domain separation for the key: the session secret may be used for other things too.
const KEY_LABEL: &[u8] = b"sso-proxy cookie sealing v1\0";
/// Sealed values longer than this are refused without trying (a header is bounded anyway).
const MAX_SEALED_LEN: usize = 64 * 1024;
/// Plaintext encodings inside the sealed value (the private jar only carries UTF-8 text).
const TEXT: char = 't';
const BINARY: char = 'b';

/// Seals and unseals cookie values. `Debug` never shows the key.
pub struct Sealer {
    key: Key,
}

impl Sealer {
    /// The sealing key, derived from the session secret (validated to be ≥ 32 bytes by the
    /// configuration; any length works here because the secret is hashed first).
    pub fn new(secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(KEY_LABEL);
        hasher.update(secret);
        let master: [u8; 32] = hasher.finalize().into();
        Sealer {
            key: Key::derive_from(&master),
        }
    }

    /// Encrypts and authenticates `plaintext` for the cookie `name`. The result is standard
    /// base64, safe as a cookie value.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> String {
        let text = match std::str::from_utf8(plaintext) {
            Ok(text) => format!("{TEXT}{text}"),
            Err(_) => format!("{BINARY}{}", URL_SAFE_NO_PAD.encode(plaintext)),
        };
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key)
            .add(Cookie::new(name.to_owned(), text));
        // `add` just put the sealed cookie under `name` into the jar.
        jar.get(name)
            .map(|c| c.value().to_owned())
            .unwrap_or_default()
    }

    /// The plaintext sealed for `name`, or `None` when the value is garbage, truncated,
    /// tampered with, or was sealed for another name or key.
    pub fn unseal(&self, name: &str, value: &str) -> Option<Vec<u8>> {
        if value.is_empty() || value.len() > MAX_SEALED_LEN {
            return None;
        }
        let jar = CookieJar::new();
        let opened = jar
            .private(&self.key)
            .decrypt(Cookie::new(name.to_owned(), value.to_owned()))?;
        let text = opened.value();
        if let Some(text) = text.strip_prefix(TEXT) {
            Some(text.as_bytes().to_vec())
        } else {
            URL_SAFE_NO_PAD.decode(text.strip_prefix(BINARY)?).ok()
        }
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&[7u8; 32])
    }

    #[test]
    fn seal_round_trips_text_and_binary() {
        let s = sealer();
        let v = s.seal("c", b"{\"a\":1}");
        assert_eq!(s.unseal("c", &v).unwrap(), b"{\"a\":1}");
        let bin = [0xffu8, 0, 1, 0xfe, 0x80];
        let v = s.seal("c", &bin);
        assert_eq!(s.unseal("c", &v).unwrap(), bin);
        assert_eq!(s.unseal("c", &s.seal("c", b"")).unwrap(), b"");
    }

    #[test]
    fn sealed_value_is_cookie_safe_and_hides_plaintext() {
        let v = sealer().seal("c", b"very-secret-token");
        assert!(!v.contains("very-secret-token"));
        assert!(v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
    }

    #[test]
    fn sealing_twice_gives_different_values() {
        let s = sealer();
        assert_ne!(s.seal("c", b"x"), s.seal("c", b"x"));
    }

    #[test]
    fn value_sealed_for_one_name_fails_under_another() {
        let s = sealer();
        let v = s.seal("sso_session", b"payload");
        assert!(s.unseal("sso_session_0", &v).is_none());
        assert!(s.unseal("other", &v).is_none());
    }

    #[test]
    fn value_sealed_with_another_secret_fails() {
        let v = sealer().seal("c", b"payload");
        assert!(Sealer::new(&[8u8; 32]).unseal("c", &v).is_none());
    }

    #[test]
    fn garbage_truncated_and_tampered_values_fail() {
        let s = sealer();
        let v = s.seal("c", b"payload");
        for bad in [
            "",
            "garbage",
            "!!!!",
            "AAAA",
            &v[..v.len() - 4],
            &v[..10],
            &"A".repeat(MAX_SEALED_LEN + 1),
        ] {
            assert!(s.unseal("c", bad).is_none(), "{bad:?}");
        }
        let mut bytes = v.into_bytes();
        bytes[20] = if bytes[20] == b'A' { b'B' } else { b'A' };
        assert!(s.unseal("c", &String::from_utf8(bytes).unwrap()).is_none());
    }

    #[test]
    fn short_secret_does_not_panic() {
        let s = Sealer::new(b"short");
        assert_eq!(s.unseal("c", &s.seal("c", b"x")).unwrap(), b"x");
    }
}
