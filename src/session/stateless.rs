//! The cookie session store: the whole session, sealed into the session cookie (chunked past
//! ~3.8 KB), with the idle timeout tracked by a `last_seen` inside the sealed payload.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::cookies::{self, SameSite};
use super::{
    clear_all, CookieNames, LoadedSession, RequestCookies, Sealer, Session, SessionError,
    SessionStore,
};
use crate::config::SessionConfig;

/// Largest value of one cookie (or chunk); name and attributes fit in the rest of 4096 bytes.
pub const MAX_COOKIE_VALUE: usize = 3800;
/// At most this many chunks (about 23 KB); a larger session is refused.
pub const MAX_CHUNKS: usize = 6;
/// Separates the chunk count from the data in chunk 0 (`3.<data>`); not a base64 character.
const COUNT_SEPARATOR: char = '.';

/// Sessions carried entirely by the browser. Logout clears the cookies but cannot revoke a
/// copy taken earlier; that copy still ends at its idle timeout or max lifetime.
pub struct CookieStore {
    sealer: Arc<Sealer>,
    names: CookieNames,
    secure: bool,
    idle_timeout: u64,
    max_lifetime: u64,
}

#[derive(Serialize)]
struct PayloadRef<'a> {
    /// Last use, unix seconds.
    l: u64,
    s: &'a Session,
}

#[derive(Deserialize)]
struct Payload {
    l: u64,
    s: Session,
}

/// The sealed session read from a request, and which of our session cookies it came in.
struct Found {
    payload: Payload,
    /// `Some(n)` when read from `n` chunks, `None` when from the unchunked cookie.
    chunks: Option<usize>,
}

impl CookieStore {
    pub fn new(config: &SessionConfig, secure: bool) -> Self {
        CookieStore {
            sealer: Arc::new(Sealer::new(config.secret.expose())),
            names: cookies::cookie_names(config, secure),
            secure,
            idle_timeout: config.idle_timeout.as_secs(),
            max_lifetime: config.max_lifetime.as_secs(),
        }
    }

    /// `(name, value)` pairs carrying `session` as last seen at `last_seen`.
    fn encode(
        &self,
        session: &Session,
        last_seen: u64,
    ) -> Result<Vec<(String, String)>, SessionError> {
        let json = serde_json::to_vec(&PayloadRef {
            l: last_seen,
            s: session,
        })
        .map_err(SessionError::Serialize)?;
        let sealed = self.sealer.seal(self.names.session(), &json);
        if sealed.len() <= MAX_COOKIE_VALUE {
            return Ok(vec![(self.names.session().to_owned(), sealed)]);
        }
        let count = sealed.len().div_ceil(MAX_COOKIE_VALUE);
        if count > MAX_CHUNKS {
            return Err(SessionError::TooLarge {
                size: sealed.len(),
                limit: MAX_CHUNKS * MAX_COOKIE_VALUE,
            });
        }
        let mut out = Vec::with_capacity(count);
        for index in 0..count {
            let start = index * MAX_COOKIE_VALUE;
            let end = sealed.len().min(start + MAX_COOKIE_VALUE);
            // The sealed value is base64 (ASCII), so every byte offset is a char boundary.
            let part = sealed.get(start..end).unwrap_or_default();
            let value = if index == 0 {
                format!("{count}{COUNT_SEPARATOR}{part}")
            } else {
                part.to_owned()
            };
            out.push((self.names.chunk(index), value));
        }
        Ok(out)
    }

    /// `Set-Cookie` values for `session`, plus clears for our session cookies in `present`
    /// that the new set leaves stale.
    fn issue(
        &self,
        session: &Session,
        now: u64,
        present: &[&str],
    ) -> Result<Vec<String>, SessionError> {
        let pairs = self.encode(session, now)?;
        let max_age = session.expires_at.saturating_sub(now);
        let mut out: Vec<String> = pairs
            .iter()
            .map(|(name, value)| {
                cookies::set_cookie(name, value, max_age, self.secure, SameSite::Lax)
            })
            .collect();
        for name in present {
            if !pairs.iter().any(|(n, _)| n == name) {
                out.push(cookies::clear_cookie(name, self.secure));
            }
        }
        Ok(out)
    }

    /// Names of our session cookie and its chunks present in the request.
    fn present<'c>(&self, cookies: &'c RequestCookies) -> Vec<&'c str> {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in cookies.iter() {
            let ours = name == self.names.session() || self.names.chunk_index(name).is_some();
            if ours && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Whether `name` is left over, given the session was read from `chunks` chunks (`None`:
    /// from the unchunked cookie).
    fn is_stale(&self, name: &str, chunks: Option<usize>) -> bool {
        match (chunks, self.names.chunk_index(name)) {
            (None, index) => index.is_some(),
            (Some(_), None) => true,
            (Some(count), Some(index)) => index >= count,
        }
    }

    fn open(&self, sealed: &str) -> Option<Payload> {
        let json = self.sealer.unseal(self.names.session(), sealed)?;
        serde_json::from_slice(&json).ok()
    }

    /// The session from the unchunked cookie, or else from the chunks.
    fn find(&self, cookies: &RequestCookies) -> Option<Found> {
        let unchunked = cookies
            .get_all(self.names.session())
            .find_map(|value| self.open(value));
        if let Some(payload) = unchunked {
            return Some(Found {
                payload,
                chunks: None,
            });
        }
        let first = cookies.get(&self.names.chunk(0))?;
        let (count, data) = first.split_once(COUNT_SEPARATOR)?;
        let count: usize = count.parse().ok()?;
        if count == 0 || count > MAX_CHUNKS {
            return None;
        }
        let mut sealed = String::with_capacity(count * MAX_COOKIE_VALUE);
        sealed.push_str(data);
        for index in 1..count {
            sealed.push_str(cookies.get(&self.names.chunk(index))?);
        }
        Some(Found {
            payload: self.open(&sealed)?,
            chunks: Some(count),
        })
    }
}

impl std::fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieStore")
            .field("cookie", &self.names.session())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for CookieStore {
    async fn load(&self, cookies: &RequestCookies, now: u64) -> Option<LoadedSession> {
        let Some(Found { payload, chunks }) = self.find(cookies) else {
            debug!(
                store = "cookie",
                reason = "missing or does not unseal",
                "no session"
            );
            return None;
        };
        let Payload {
            l: last_seen,
            s: session,
        } = payload;
        if session.is_expired(now) {
            debug!(
                store = "cookie",
                reason = "max lifetime reached",
                "no session"
            );
            return None;
        }
        if now.saturating_sub(last_seen) > self.idle_timeout {
            debug!(store = "cookie", reason = "idle timeout", "no session");
            return None;
        }
        // Our session cookies in the request: stale ones are cleared on any re-issue.
        let present = self.present(cookies);
        let refresh = now.saturating_sub(last_seen) > self.idle_timeout / 10;
        let set_cookies = if refresh {
            self.issue(&session, now, &present).unwrap_or_else(|error| {
                warn!(store = "cookie", %error, "could not re-issue the session cookie");
                Vec::new()
            })
        } else {
            present
                .iter()
                .filter(|name| self.is_stale(name, chunks))
                .map(|name| cookies::clear_cookie(name, self.secure))
                .collect()
        };
        Some(LoadedSession {
            session: Arc::new(session),
            set_cookies,
        })
    }

    async fn create(&self, mut session: Session, now: u64) -> Result<Vec<String>, SessionError> {
        session.prepare(now, self.max_lifetime)?;
        // The request's cookies are unknown here: a chunked session clears the unchunked
        // cookie (which `load` prefers); chunks left by an older session are cleared on the
        // next load.
        let unchunked = [self.names.session()];
        let out = self.issue(&session, now, &unchunked)?;
        debug!(store = "cookie", cookies = out.len(), "session created");
        Ok(out)
    }

    async fn update(
        &self,
        cookies: &RequestCookies,
        mut session: Session,
        now: u64,
    ) -> Result<Vec<String>, SessionError> {
        session.prepare(now, self.max_lifetime)?;
        let present = self.present(cookies);
        self.issue(&session, now, &present)
    }

    async fn destroy(&self, cookies: &RequestCookies) -> Vec<String> {
        clear_all(&self.names, cookies, self.secure)
    }
}
