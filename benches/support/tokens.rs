//! Shared by the benchmarks: signing keys generated at start-up (RS256 and ES256), their JWKS,
//! ID-token minting, and a realistic identity.

#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sso_proxy::identity::Identity;

/// A signing key with its public JWK.
pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl SigningKey {
    /// A fresh RSA-2048 key (RS256), as most IdPs use.
    pub fn rs256(kid: &str) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let mut rng = rand::thread_rng();
        let key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
        let pem = key
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .expect("RSA key to PEM");
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA encoding key");
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        });
        SigningKey {
            alg: Algorithm::RS256,
            kid: kid.to_owned(),
            encoding,
            jwk,
        }
    }

    /// A fresh P-256 key (ES256).
    pub fn es256(kid: &str) -> Self {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = p256::SecretKey::random(&mut rand::thread_rng());
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .expect("EC key to PEM");
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC encoding key");
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let jwk = json!({
            "kty": "EC",
            "use": "sig",
            "alg": "ES256",
            "crv": "P-256",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("x coordinate")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("y coordinate")),
        });
        SigningKey {
            alg: Algorithm::ES256,
            kid: kid.to_owned(),
            encoding,
            jwk,
        }
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing")
    }
}

/// A JWKS document holding `keys`.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

/// The claims of a realistic ID token for `sub` (a UUID-like id, as most IdPs issue).
pub fn id_token_claims(issuer: &str, client_id: &str, sub: &str, nonce: &str, now: u64) -> Value {
    json!({
        "iss": issuer,
        "sub": sub,
        "aud": client_id,
        "exp": now + 3600,
        "iat": now,
        "auth_time": now,
        "nonce": nonce,
        "at_hash": "x5Ju4sVFyEXxRsxxDwJv1A",
        "sid": "8f2f1f4c-6f1d-4f55-9d0e-2b8c0c1d9e77",
        "email": "alice.liddell@example.com",
        "email_verified": true,
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
        "preferred_username": "alice.liddell",
        "groups": ["admins", "ml-team", "data-platform"],
    })
}

/// A realistic mapped identity (what the proxy keeps per session), `n` making it unique.
pub fn identity(n: u64) -> Identity {
    Identity {
        user: format!("4f1c2a7e-9b3d-4c8e-a1f0-{n:012x}"),
        email: Some(format!("user{n}.lastname@example.com")),
        preferred_username: Some(format!("user{n}.lastname")),
        name: Some(format!("User{n} Lastname")),
        given_name: Some(format!("User{n}")),
        family_name: Some("Lastname".to_owned()),
        picture: None,
        groups: vec![
            "admins".to_owned(),
            "ml-team".to_owned(),
            "data-platform".to_owned(),
        ],
        admin: false,
        provider: "local".to_owned(),
    }
}
