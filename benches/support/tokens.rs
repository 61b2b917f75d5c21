//! Shared by the benchmarks: signing keys generated at start-up (RS256 and ES256, signed with
//! ring, the key parsed once), their JWKS,
//! ID-token minting, and a realistic identity.

#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{json, Value};
use sso_proxy::identity::Identity;

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A signing key, parsed once and kept (as an OP keeps its key), with its public JWK.
pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: String,
    pub jwk: Value,
    signer: Signer,
    rng: SystemRandom,
}

impl SigningKey {
    /// A fresh RSA-2048 key (RS256), as most IdPs use.
    pub fn rs256(kid: &str) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let key =
            rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation");
        let der = key.to_pkcs1_der().expect("RSA key to DER");
        let pair = RsaKeyPair::from_der(der.as_bytes()).expect("RSA key pair");
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
            jwk,
            signer: Signer::Rsa(pair),
            rng: SystemRandom::new(),
        }
    }

    /// A fresh P-256 key (ES256).
    pub fn es256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("EC key generation");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("EC key pair");
        // Uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC",
            "use": "sig",
            "alg": "ES256",
            "crv": "P-256",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        SigningKey {
            alg: Algorithm::ES256,
            kid: kid.to_owned(),
            jwk,
            signer: Signer::Ec(pair),
            rng,
        }
    }

    /// Signs `claims` into a compact JWS.
    pub fn sign(&self, claims: &Value) -> String {
        let alg = match self.signer {
            Signer::Rsa(_) => "RS256",
            Signer::Ec(_) => "ES256",
        };
        let header = json!({ "alg": alg, "typ": "JWT", "kid": self.kid });
        let mut jws = URL_SAFE_NO_PAD.encode(header.to_string());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = match &self.signer {
            Signer::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    jws.as_bytes(),
                    &mut sig,
                )
                .expect("RSA signing");
                sig
            }
            Signer::Ec(pair) => pair
                .sign(&self.rng, jws.as_bytes())
                .expect("EC signing")
                .as_ref()
                .to_vec(),
        };
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(sig));
        jws
    }
}

/// Verifies compact JWS signatures with ring, from a public JWK (a reference point for the
/// proxy's own verification in the micro-benchmarks).
pub struct RingVerifier {
    rsa: Option<(Vec<u8>, Vec<u8>)>,
    ec_point: Option<Vec<u8>>,
}

impl RingVerifier {
    pub fn new(jwk: &Value) -> Self {
        let field = |name: &str| {
            jwk[name]
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .unwrap_or_default()
        };
        match jwk["kty"].as_str() {
            Some("RSA") => RingVerifier {
                rsa: Some((field("n"), field("e"))),
                ec_point: None,
            },
            _ => {
                let mut point = vec![4u8];
                point.extend(field("x"));
                point.extend(field("y"));
                RingVerifier {
                    rsa: None,
                    ec_point: Some(point),
                }
            }
        }
    }

    pub fn verify(&self, jws: &str) -> bool {
        let Some(dot) = jws.rfind('.') else {
            return false;
        };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(&jws[dot + 1..]) else {
            return false;
        };
        let message = &jws.as_bytes()[..dot];
        match (&self.rsa, &self.ec_point) {
            (Some((n, e)), _) => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, &sig)
                .is_ok(),
            (None, Some(point)) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, &sig)
                    .is_ok()
            }
            (None, None) => false,
        }
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
