//! The signed identity header (`X-Sso-Identity`, DESIGN section 5): a short-lived ES256 JWT
//! with the session's identity, verifiable with `/_sso/jwks.json`. The key is derived from the
//! session secret, so every replica signs with the same key and publishes the same JWKS.

use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::session::Session;

/// How long an identity token is valid.
pub const LIFETIME: u64 = 60;

pub struct IdentitySigner {
    key: EncodingKey,
    kid: String,
    jwks: Value,
    issuer: String,
    /// Tokens per session, reused until half their lifetime is gone.
    cache: moka::sync::Cache<[u8; 32], (String, u64)>,
}

impl IdentitySigner {
    /// `None` only if the derived scalar is not a valid P-256 key (probability ~2^-128).
    pub fn new(secret: &[u8], issuer: &str) -> Option<Self> {
        let mut seed = Sha256::new();
        seed.update(b"sso-proxy identity signing key\0");
        seed.update(secret);
        let secret_key = p256::SecretKey::from_slice(&seed.finalize()).ok()?;
        let der = secret_key.to_pkcs8_der().ok()?;
        let point = secret_key.public_key().to_encoded_point(false);
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let (x, y) = (b64(point.x()?), b64(point.y()?));
        let kid = b64(&Sha256::digest(format!("{x}.{y}").as_bytes())[..12]);
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256", "kid": kid}]});
        Some(IdentitySigner {
            key: EncodingKey::from_ec_der(der.as_bytes()),
            kid,
            jwks,
            issuer: issuer.trim_end_matches('/').to_owned(),
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(LIFETIME / 2))
                .build(),
        })
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The token for this session, signed now or reused from the last half-minute.
    pub fn token(&self, session: &Session, now: u64) -> Option<String> {
        let id = &session.identity;
        let mut h = Sha256::new();
        for part in [
            id.provider.as_bytes(),
            id.user.as_bytes(),
            &session.created_at.to_be_bytes(),
        ] {
            h.update(part);
            h.update([0]);
        }
        let key: [u8; 32] = h.finalize().into();
        if let Some((token, exp)) = self.cache.get(&key) {
            if exp > now + LIFETIME / 4 {
                return Some(token);
            }
        }
        let claims = json!({
            "iss": self.issuer,
            "sub": id.user,
            "email": id.email,
            "preferred_username": id.preferred_username,
            "name": id.name,
            "groups": id.groups,
            "admin": id.admin,
            "provider": id.provider,
            "iat": now,
            "exp": now + LIFETIME,
        });
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key).ok()?;
        self.cache.insert(key, (token.clone(), now + LIFETIME));
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;
    use crate::identity::Identity;

    #[test]
    fn tokens_verify_with_the_published_jwks_and_keys_are_stable() {
        let a = IdentitySigner::new(b"0123456789abcdef0123456789abcdef", "https://app/").unwrap();
        let b = IdentitySigner::new(b"0123456789abcdef0123456789abcdef", "https://app").unwrap();
        assert_eq!(a.jwks(), b.jwks(), "replicas publish the same key");
        let other =
            IdentitySigner::new(b"another secret, also 32 bytes lo", "https://app").unwrap();
        assert_ne!(a.jwks(), other.jwks());

        let identity = Identity {
            user: "alice".into(),
            groups: vec!["ml".into()],
            provider: "kc".into(),
            ..Identity::default()
        };
        let session = Session::new(identity, 1_000, Duration::from_secs(3600));
        let now = jsonwebtoken::get_current_timestamp();
        let token = a.token(&session, now).unwrap();
        assert_eq!(a.token(&session, now).unwrap(), token, "reused while fresh");
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(a.jwks()["keys"][0].clone()).unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&["https://app"]);
        v.validate_aud = false;
        let data = jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(&jwk).unwrap(), &v)
            .unwrap();
        assert_eq!(data.claims["sub"], "alice");
        assert_eq!(data.claims["groups"], json!(["ml"]));
        let wrong: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(other.jwks()["keys"][0].clone()).unwrap();
        assert!(
            jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(&wrong).unwrap(), &v)
                .is_err()
        );
    }
}
