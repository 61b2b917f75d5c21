//! ID-token validation (DESIGN section 6, "ID tokens"): the algorithm allowlist, the signature
//! (through the JWKS cache) and every claim rule, with an injected clock.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Why a token was refused. `BadSignature` is a 403; the rest are 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("signature algorithm {0:?} is not allowed")]
    AlgNotAllowed(String),
    #[error("no signing key matches the token (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("issuer {found:?} is not the expected {expected:?}")]
    WrongIssuer { expected: String, found: String },
    #[error("the audience does not contain our client id")]
    WrongAudience,
    #[error("azp {0:?} is not our client id")]
    AzpMismatch(String),
    #[error("azp is required when the token has several audiences")]
    AzpMissing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the nonce does not match this login")]
    NonceMismatch,
    #[error("required claim {0:?} is missing or has the wrong type")]
    MissingClaim(&'static str),
}

/// What a token must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// `Some` for ID tokens: the nonce sent in this login.
    pub nonce: Option<&'a str>,
    /// `false` for access tokens, whose `aud` is the resource server's, not ours.
    pub check_audience: bool,
    pub skew_secs: u64,
    pub now: u64,
}

/// The parts of the JOSE header we use. `jku`, `jwk` and `x5u` are never read.
#[derive(Debug, Clone)]
pub struct TokenHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

/// Read the header and enforce the algorithm allowlist before any key is looked at.
pub fn header(token: &str, allowed: &[Algorithm]) -> Result<TokenHeader, TokenError> {
    let first = token.split('.').next().ok_or(TokenError::Malformed)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed)?;
    let json: Value = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
    let alg_name = json
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::Malformed)?;
    let alg: Algorithm = alg_name
        .parse()
        .map_err(|_| TokenError::AlgNotAllowed(alg_name.to_owned()))?;
    if !allowed.contains(&alg) {
        return Err(TokenError::AlgNotAllowed(alg_name.to_owned()));
    }
    let kid = json.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok(TokenHeader { alg, kid })
}

/// Verify the signature with `key` and return the claims. Time and audience rules are left to
/// [`check_claims`], which uses the injected clock.
pub fn verify_signature(
    token: &str,
    alg: Algorithm,
    key: &DecodingKey,
) -> Result<Map<String, Value>, TokenError> {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind as K;
            Err(match e.kind() {
                K::InvalidSignature | K::InvalidAlgorithm | K::InvalidKeyFormat => {
                    TokenError::BadSignature
                }
                _ => TokenError::Malformed,
            })
        }
    }
}

/// Decode the claims without a signature check (`verify_token_signature: false` only).
pub fn insecure_claims(token: &str) -> Result<Map<String, Value>, TokenError> {
    let payload = token.split('.').nth(1).ok_or(TokenError::Malformed)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)
}

fn number(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(TokenError::MissingClaim(name)),
    }
}

/// Every claim rule of DESIGN section 6.
pub fn check_claims(
    claims: &Map<String, Value>,
    want: &Expectations<'_>,
) -> Result<(), TokenError> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(TokenError::MissingClaim("iss"))?;
    if iss != want.issuer {
        return Err(TokenError::WrongIssuer {
            expected: want.issuer.to_owned(),
            found: iss.to_owned(),
        });
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {}
        _ => return Err(TokenError::MissingClaim("sub")),
    }
    if want.check_audience {
        check_audience(claims, want.client_id)?;
    }
    let exp = number(claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if want.now > exp.saturating_add(want.skew_secs) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = number(claims, "nbf")? {
        if nbf > want.now.saturating_add(want.skew_secs) {
            return Err(TokenError::NotYetValid);
        }
    }
    let iat = number(claims, "iat")?;
    if want.nonce.is_some() && iat.is_none() {
        return Err(TokenError::MissingClaim("iat"));
    }
    if iat.is_some_and(|iat| iat > want.now.saturating_add(want.skew_secs)) {
        return Err(TokenError::IssuedInFuture);
    }
    if let Some(nonce) = want.nonce {
        let got = claims
            .get("nonce")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !constant_time_eq(got.as_bytes(), nonce.as_bytes()) {
            return Err(TokenError::NonceMismatch);
        }
    }
    Ok(())
}

fn check_audience(claims: &Map<String, Value>, client_id: &str) -> Result<(), TokenError> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(TokenError::MissingClaim("aud")),
    };
    if !audiences.contains(&client_id) {
        return Err(TokenError::WrongAudience);
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp != client_id => Err(TokenError::AzpMismatch(azp.clone())),
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(TokenError::MissingClaim("azp")),
        None if audiences.len() > 1 => Err(TokenError::AzpMissing),
        None => Ok(()),
    }
}

/// Compare secrets without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[path = "id_token_tests.rs"]
mod tests;
