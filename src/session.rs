//! Sessions: the `Session` record, the `SessionStore` trait with its memory (moka) and sealed
//! cookie implementations, request-cookie parsing and our cookie names, and logins in progress.

mod cookies;
pub mod id_cookie;
pub mod memory;
pub mod once;
pub mod pending;
pub mod redis;
pub mod sealed;
pub mod stateless;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{SessionConfig, SessionStoreKind};
use crate::identity::Identity;

pub use cookies::{cookie_names, strip_own_cookies, CookieNames, RequestCookies};
pub use memory::MemoryStore;
pub use once::{Once, UseOnce};
pub use pending::{PendingError, PendingLogin, PendingStore};
pub use sealed::Sealer;
pub use stateless::CookieStore;
pub use token::StoredToken;

#[cfg(test)]
/// Unit tests: the memory and cookie stores (and single-use marks without Redis) never wait,
/// so their futures are ready at the first poll.
pub(crate) trait Ready: std::future::Future + Sized {
    fn ready(self) -> Self::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(self).poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the store waited"),
        }
    }
}

#[cfg(test)]
impl<F: std::future::Future> Ready for F {}

/// A logged-in user: who they are, the tokens the IdP gave, and when the session ends.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub identity: Identity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<StoredToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<StoredToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<StoredToken>,
    /// When the access token expires (unix seconds), for refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<u64>,
    /// The ID token's `sub` and `sid`, for back-channel logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Login time in milliseconds (wall clock), to order sessions against back-channel logouts.
    #[serde(default)]
    pub created_ms: u64,
    /// The ClearML user id (bridge mode), for re-issuing its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearml_user: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds: the absolute end (`created_at + max_lifetime`, or earlier if tokens say so).
    pub expires_at: u64,
}

/// A session found by [`SessionStore::load`]. `Debug` shows no cookie values.
#[derive(Clone)]
pub struct LoadedSession {
    pub session: Arc<Session>,
    /// `Set-Cookie` values to add to the response: a re-issued cookie-store cookie (idle
    /// timeout) or clears for stale chunks. Usually empty.
    pub set_cookies: Vec<String>,
}

/// Where sessions live. Implementations never fail or panic on bad cookies. Async because a
/// shared store answers over the network; the memory and cookie stores never wait.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// The session named by the request's cookies. Missing, garbage, truncated, tampered or
    /// expired → `None` (never an error, never a panic). Logs why at debug level.
    async fn load(&self, cookies: &RequestCookies, now: u64) -> Option<LoadedSession>;
    /// Stores a NEW session (always a fresh id: no fixation) and returns the `Set-Cookie` values.
    async fn create(&self, session: Session, now: u64) -> Result<Vec<String>, SessionError>;
    /// Replaces the session named by the cookies (after a token refresh), keeping its id, and
    /// returns the `Set-Cookie` values to send (none for the memory store).
    async fn update(
        &self,
        cookies: &RequestCookies,
        session: Session,
        now: u64,
    ) -> Result<Vec<String>, SessionError>;
    /// Removes the session named by the cookies (server side too) and returns `Set-Cookie`
    /// values that clear every cookie of ours.
    async fn destroy(&self, cookies: &RequestCookies) -> Vec<String>;
    /// `Err(what)` while the store cannot take new sessions (a shared store that is down);
    /// `/_sso/readyz` reports it.
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
    /// Connect, for a shared store; run once inside the runtime that outlives every request.
    async fn start(&self) {}
    /// End every session of connection `provider` whose ID token had this `sid` (or `sub`):
    /// a back-channel logout. Stores that cannot find sessions by it return 0; the process's
    /// revocation list covers them.
    async fn end_matching(
        &self,
        _provider: &str,
        _kind: &str,
        _value: &str,
    ) -> Result<usize, SessionError> {
        Ok(0)
    }
    /// A shared store's Redis connection, which the other shared state (single-use marks)
    /// uses too.
    fn shared(&self) -> Option<Arc<crate::redis::Redis>> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the session could not be serialised")]
    Serialize(#[source] serde_json::Error),
    #[error("your identity (claims and groups) is too large for the cookie session store: {size} bytes sealed, over its limit of {limit} bytes. The administrator can switch to the memory or Redis session store (session.store) or have the identity provider send fewer groups")]
    TooLarge { size: usize, limit: usize },
    #[error("the session has already expired")]
    Expired,
    #[error("{0}")]
    Unavailable(String),
}

impl Session {
    /// A session without tokens that starts at `now` and lasts `max_lifetime`.
    pub fn new(identity: Identity, now: u64, max_lifetime: Duration) -> Self {
        Session {
            identity,
            id_token: None,
            access_token: None,
            refresh_token: None,
            access_expires_at: None,
            sub: None,
            sid: None,
            clearml_user: None,
            created_ms: 0,
            created_at: now,
            expires_at: now.saturating_add(max_lifetime.as_secs()),
        }
    }

    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// Clamps `expires_at` to `now + max_lifetime` (an unset `0` becomes that too) and trims
    /// spare string capacity (sessions may be held by the million); fails when the session is already over.
    fn prepare(&mut self, now: u64, max_lifetime: u64) -> Result<(), SessionError> {
        let limit = now.saturating_add(max_lifetime);
        if self.expires_at == 0 || self.expires_at > limit {
            self.expires_at = limit;
        }
        if self.is_expired(now) {
            return Err(SessionError::Expired);
        }
        let identity = &mut self.identity;
        identity.user.shrink_to_fit();
        identity.provider.shrink_to_fit();
        identity.groups.shrink_to_fit();
        identity.groups.iter_mut().for_each(String::shrink_to_fit);
        [
            &mut identity.email,
            &mut identity.preferred_username,
            &mut identity.name,
            &mut identity.given_name,
            &mut identity.family_name,
            &mut identity.picture,
        ]
        .into_iter()
        .flatten()
        .for_each(String::shrink_to_fit);
        Ok(())
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |t: &Option<StoredToken>| t.as_ref().map(|_| "<redacted>");
        f.debug_struct("Session")
            .field("identity", &self.identity)
            .field("id_token", &redact(&self.id_token))
            .field("access_token", &redact(&self.access_token))
            .field("refresh_token", &redact(&self.refresh_token))
            .field("access_expires_at", &self.access_expires_at)
            .field("sub", &self.sub)
            .field("sid", &self.sid)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl std::fmt::Debug for LoadedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedSession")
            .field("session", &self.session)
            .field("set_cookies", &self.set_cookies.len())
            .finish()
    }
}

/// The configured store; `secure` is true when `public_url` is https. A Redis store connects
/// only in [`SessionStore::start`].
pub fn build_store(config: &SessionConfig, secure: bool) -> Result<Arc<dyn SessionStore>, String> {
    Ok(match (config.store, &config.redis) {
        (SessionStoreKind::Memory, _) => Arc::new(MemoryStore::new(config, secure)),
        (SessionStoreKind::Cookie, _) => Arc::new(CookieStore::new(config, secure)),
        (SessionStoreKind::Redis, Some(settings)) => {
            let redis = Arc::new(crate::redis::Redis::new(settings)?);
            Arc::new(redis::RedisStore::new(config, settings, redis, secure))
        }
        (SessionStoreKind::Redis, None) => {
            return Err("session.store: redis without its settings".to_owned())
        }
    })
}

/// The pending-login store, keyed with the session secret; `once` remembers used states.
pub fn build_pending(config: &SessionConfig, secure: bool, once: Arc<UseOnce>) -> PendingStore {
    let sealer = Arc::new(Sealer::new(config.secret.expose()));
    PendingStore::new(sealer, &config.cookie_name, secure, once)
}

/// `Set-Cookie` values clearing the session cookie and every cookie of ours in the request.
fn clear_all(names: &CookieNames, cookies: &RequestCookies, secure: bool) -> Vec<String> {
    let mut cleared: Vec<&str> = vec![names.session()];
    for (name, _) in cookies.iter() {
        if names.is_ours(name) && !cleared.contains(&name) {
            cleared.push(name);
        }
    }
    cleared
        .into_iter()
        .map(|name| cookies::clear_cookie(name, secure))
        .collect()
}

#[cfg(test)]
mod tests;
