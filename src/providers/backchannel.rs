//! OIDC Back-Channel Logout 1.0: `POST /_sso/backchannel_logout/<id>` with a `logout_token`.
//! A valid token records a revocation for its `sid` or `sub`; sessions of that connection
//! created before it are refused from then on (this works for both session stores).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use super::id_token::{self, TokenError};
use super::jwks::JwksError;
use super::oidc::OidcProvider;
use crate::session::{Once, Session, UseOnce};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token's `jti` is remembered, and the oldest `iat` accepted.
const JTI_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    #[error("logout token: {0}")]
    Token(#[from] TokenError),
    #[error("logout token: the signing keys could not be used")]
    Keys,
    #[error("logout token: the connection has no metadata yet")]
    NotReady,
    #[error("logout token: missing or wrong `events`")]
    Events,
    #[error("logout token: must not carry a nonce")]
    Nonce,
    #[error("logout token: needs `sid` or `sub`")]
    NoSubject,
    #[error("logout token: missing `jti`")]
    NoJti,
    #[error("logout token: already used")]
    Replayed,
    #[error("logout token: too old")]
    TooOld,
    #[error("logout token: its single use cannot be checked: {0}")]
    Unavailable(String),
}

/// Revoked sessions and used logout-token ids.
pub struct Revocations {
    /// `provider \n sid|sub \n value` → logout time (unix milliseconds).
    revoked: moka::sync::Cache<String, u64>,
    any: AtomicBool,
}

impl Revocations {
    pub fn new(max_lifetime: Duration) -> Self {
        Revocations {
            revoked: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(max_lifetime.max(Duration::from_secs(60)))
                .build(),
            any: AtomicBool::new(false),
        }
    }

    fn key(provider: &str, kind: &str, value: &str) -> String {
        format!("{provider}\n{kind}\n{value}")
    }

    /// True when a back-channel logout ended this session.
    pub fn is_revoked(&self, session: &Session) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let provider = &session.identity.provider;
        let hit = |kind: &str, value: &Option<String>| {
            value
                .as_deref()
                .and_then(|v| self.revoked.get(&Self::key(provider, kind, v)))
                .is_some_and(|at| created_ms(session) <= at)
        };
        hit("sid", &session.sid) || hit("sub", &session.sub)
    }

    /// Validate a logout token for `provider` and record the revocation it asks for. `once`
    /// remembers the tokens' `jti` (in Redis when the session store is shared). Returns what
    /// ended: `("sid", value)` or, for a token without `sid`, `("sub", value)`.
    pub async fn logout(
        &self,
        provider: &OidcProvider,
        token: &str,
        now: u64,
        once: &UseOnce,
    ) -> Result<(&'static str, String), LogoutTokenError> {
        let claims = verify(provider, token, now).await?;
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty())
            .ok_or(LogoutTokenError::NoJti)?;
        let jti_key = format!("{}\n{jti}", provider.id());
        match once
            .first_use(Once::LogoutToken, jti_key.as_bytes(), JTI_TTL)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(LogoutTokenError::Replayed),
            Err(e) => return Err(LogoutTokenError::Unavailable(e.to_string())),
        }
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (kind, value) = match (text("sid"), text("sub")) {
            (Some(sid), _) => ("sid", sid),
            (None, Some(sub)) => ("sub", sub),
            (None, None) => return Err(LogoutTokenError::NoSubject),
        };
        self.any.store(true, Ordering::Relaxed);
        self.revoked
            .insert(Self::key(provider.id(), kind, value), now_ms());
        tracing::info!(provider = %provider.id(), sid = ?text("sid"), "back-channel logout");
        Ok((kind, value.to_owned()))
    }
}

/// Wall-clock milliseconds: sessions and logouts within the same second must be ordered.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A session's login time in ms; sessions from before `created_ms` existed count from the end
/// of their login second (so a logout in that second still ends them).
fn created_ms(session: &Session) -> u64 {
    if session.created_ms > 0 {
        session.created_ms
    } else {
        session.created_at.saturating_mul(1000).saturating_add(999)
    }
}

async fn verify(
    provider: &OidcProvider,
    token: &str,
    now: u64,
) -> Result<Map<String, Value>, LogoutTokenError> {
    let meta = provider.metadata().ok_or(LogoutTokenError::NotReady)?;
    let config = &provider.config;
    let header = id_token::header(token, &config.allowed_algs)?;
    let jwks = meta.jwks_uri.as_ref().ok_or(LogoutTokenError::NotReady)?;
    let key = provider
        .jwks()
        .key(jwks, header.kid.as_deref(), header.alg)
        .await
        .map_err(|e| match e {
            JwksError::UnknownKey { kid, .. } => {
                LogoutTokenError::Token(TokenError::UnknownKey(kid))
            }
            _ => LogoutTokenError::Keys,
        })?;
    let claims = id_token::verify_signature(token, header.alg, &key.key)?;
    check(
        &claims,
        &meta.issuer,
        &config.client_id,
        config.clock_skew.as_secs(),
        now,
    )?;
    Ok(claims)
}

/// The claim rules of Back-Channel Logout 1.0 section 2.6.
pub fn check(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    skew: u64,
    now: u64,
) -> Result<(), LogoutTokenError> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if iss != issuer {
        return Err(TokenError::WrongIssuer {
            expected: issuer.to_owned(),
            found: iss.to_owned(),
        }
        .into());
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(TokenError::WrongAudience.into());
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(TokenError::MissingClaim("iat"))?;
    if iat > now.saturating_add(skew) {
        return Err(TokenError::IssuedInFuture.into());
    }
    if now.saturating_sub(iat) > JTI_TTL.as_secs() {
        return Err(LogoutTokenError::TooOld);
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
        if now > exp.saturating_add(skew) {
            return Err(TokenError::Expired.into());
        }
    }
    let has_event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(EVENT))
        .is_some_and(Value::is_object);
    if !has_event {
        return Err(LogoutTokenError::Events);
    }
    if claims.contains_key("nonce") {
        return Err(LogoutTokenError::Nonce);
    }
    let present = |n: &str| {
        claims
            .get(n)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !present("sid") && !present("sub") {
        return Err(LogoutTokenError::NoSubject);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn good() -> Map<String, Value> {
        json!({"iss": "https://op", "aud": "c", "iat": NOW, "jti": "j1", "sid": "s1",
               "events": {EVENT: {}}})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn accepts_a_valid_logout_token() {
        assert_eq!(check(&good(), "https://op", "c", 60, NOW), Ok(()));
    }

    #[test]
    fn rejects_each_malformed_variant() {
        type Mutation = Box<dyn Fn(&mut Map<String, Value>)>;
        let variants: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|c| {
                    c.insert("iss".into(), json!("x"));
                }),
                "WrongIssuer",
            ),
            (
                Box::new(|c| {
                    c.insert("aud".into(), json!("other"));
                }),
                "WrongAudience",
            ),
            (
                Box::new(|c| {
                    c.remove("events");
                }),
                "Events",
            ),
            (
                Box::new(|c| {
                    c.insert("events".into(), json!({"other": {}}));
                }),
                "Events",
            ),
            (
                Box::new(|c| {
                    c.insert("nonce".into(), json!("n"));
                }),
                "Nonce",
            ),
            (
                Box::new(|c| {
                    c.remove("sid");
                }),
                "NoSubject",
            ),
            (
                Box::new(|c| {
                    c.insert("iat".into(), json!(NOW + 3600));
                }),
                "IssuedInFuture",
            ),
            (
                Box::new(|c| {
                    c.insert("iat".into(), json!(NOW - 3600));
                }),
                "TooOld",
            ),
            (
                Box::new(|c| {
                    c.remove("iat");
                }),
                "MissingClaim",
            ),
            (
                Box::new(|c| {
                    c.insert("exp".into(), json!(NOW - 3600));
                }),
                "Expired",
            ),
        ];
        for (mutate, expected) in variants {
            let mut c = good();
            mutate(&mut c);
            let err = check(&c, "https://op", "c", 60, NOW).unwrap_err();
            assert!(
                format!("{err:?}").contains(expected),
                "{err:?} vs {expected}"
            );
        }
    }
}
