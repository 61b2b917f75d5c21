//! Token refresh: when a session's access token nears expiry and it holds a refresh token, the
//! next request refreshes it — behind the response while the access token is still valid and
//! the session lives server-side, before the request goes on otherwise. Concurrent requests of
//! one session share a single refresh (keyed by the refresh token), so a rotating refresh token
//! is never used twice; `invalid_grant` ends the session.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::oidc::OidcError;
use crate::app::App;
use crate::session::{LoadedSession, Once, RequestCookies, Session, StoredToken};

/// Refresh this long before the access token expires.
pub const REFRESH_MARGIN: u64 = 60;
/// A refresh result is shared this long: late requests still carrying the old refresh token get
/// the new session instead of replaying a rotated token; failures are not retried sooner.
const SHARE_FOR: Duration = Duration::from_secs(30);

/// What happened to the session.
pub enum Outcome {
    /// No refresh was due, or it failed transiently: carry on with the session as it is.
    Unchanged,
    Updated {
        session: Arc<Session>,
        set_cookies: Vec<String>,
    },
    /// The IdP refused the refresh token: the session is over.
    Ended { set_cookies: Vec<String> },
}

#[derive(Clone)]
enum Shared {
    Updated(Arc<Session>),
    /// Another replica refreshed it; this is the stored result.
    Reloaded(Arc<Session>),
    Ended,
    Failed,
}

/// How long a replica waits for another one's refresh of the same session.
const WAIT_FOR_OTHER_REPLICA: Duration = Duration::from_secs(5);

/// Single-flight refreshes, shared by every request of this process.
pub struct Refresher {
    inflight: moka::future::Cache<[u8; 32], Shared>,
}

impl Default for Refresher {
    fn default() -> Self {
        Refresher {
            inflight: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(SHARE_FOR)
                .build(),
        }
    }
}

/// True when the session's access token expires within the margin and it can be refreshed.
pub fn due(session: &Session, now: u64) -> bool {
    session.refresh_token.is_some()
        && session
            .access_expires_at
            .is_some_and(|t| now.saturating_add(REFRESH_MARGIN) >= t)
}

/// True when a due refresh may run behind the response: the access token is still valid (the
/// request can go on with it) and the store keeps the session server-side. The cookie store
/// can only save the refreshed session (a rotated refresh token) in this response, and an
/// expired access token is refreshed before the request goes on.
pub fn in_background(session: &Session, now: u64, server_side: bool) -> bool {
    server_side && session.access_expires_at.is_some_and(|t| now < t)
}

impl Refresher {
    pub async fn run(
        &self,
        app: &App,
        loaded: &LoadedSession,
        cookies: &RequestCookies,
    ) -> Outcome {
        let session = &loaded.session;
        let Some(token) = session.refresh_token.as_ref().map(StoredToken::expose) else {
            return Outcome::Unchanged;
        };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let shared = self
            .inflight
            .get_with(key, refresh(app, Arc::clone(session), cookies))
            .await;
        let now = app.now();
        match shared {
            Shared::Updated(new) => match app.sessions.update(cookies, (*new).clone(), now).await {
                Ok(set_cookies) => {
                    tracing::debug!(user = %session.identity.user, "refreshed session stored");
                    Outcome::Updated {
                        session: new,
                        set_cookies,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "refreshed session could not be stored");
                    Outcome::Unchanged
                }
            },
            Shared::Reloaded(session) => Outcome::Updated {
                session,
                set_cookies: Vec::new(),
            },
            Shared::Ended => Outcome::Ended {
                set_cookies: app.sessions.destroy(cookies).await,
            },
            Shared::Failed => Outcome::Unchanged,
        }
    }
}

async fn refresh(app: &App, session: Arc<Session>, cookies: &RequestCookies) -> Shared {
    let provider_id = session.identity.provider.clone();
    let registry = app.registry.load_full();
    let Some(provider) = registry.get(&provider_id) else {
        return Shared::Ended;
    };
    let Some(token) = session.refresh_token.as_ref().map(StoredToken::expose) else {
        return Shared::Failed;
    };
    // One refresh per token across replicas (within one process the single-flight above holds).
    let lock = if app.once.is_shared() {
        app.once
            .first_use(Once::RefreshToken, token.as_bytes(), SHARE_FOR)
            .await
    } else {
        Ok(true)
    };
    match lock {
        Ok(true) => {}
        Ok(false) => return other_replicas_result(app, &session, cookies).await,
        Err(e) => {
            tracing::warn!(provider = %provider_id, error = %e, "token refresh skipped: the shared store cannot lock it");
            return Shared::Failed;
        }
    }
    match provider.refresh(&token, app.now()).await {
        Ok(tokens) => {
            let mut next = (*session).clone();
            if let Some(rotated) = tokens.refresh_token {
                next.refresh_token = Some(StoredToken::new(rotated));
            }
            if next.access_token.is_some() {
                next.access_token = tokens.access_token.map(StoredToken::new);
            }
            next.access_expires_at = tokens.access_expires_at;
            tracing::debug!(provider = %provider_id, "session refreshed");
            Shared::Updated(Arc::new(next))
        }
        Err(OidcError::TokenRejected(code)) if code == "invalid_grant" => {
            tracing::info!(provider = %provider_id, user = %session.identity.user, "refresh token refused; session ended");
            Shared::Ended
        }
        Err(e) => {
            tracing::warn!(provider = %provider_id, error = %e, "token refresh failed; keeping the session");
            Shared::Failed
        }
    }
}

/// Another replica holds the refresh lock: wait for the session it stores (a new refresh token
/// or a later access-token expiry), or for the session to end.
async fn other_replicas_result(app: &App, old: &Session, cookies: &RequestCookies) -> Shared {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER_REPLICA;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(loaded) = app.sessions.load(cookies, app.now()).await else {
            return Shared::Ended;
        };
        let s = &loaded.session;
        if s.refresh_token != old.refresh_token || s.access_expires_at != old.access_expires_at {
            return Shared::Reloaded(Arc::clone(s));
        }
    }
    tracing::warn!(user = %old.identity.user, "another replica's token refresh did not finish in time; keeping the session");
    Shared::Failed
}
