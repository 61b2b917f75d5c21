//! The in-memory session store: sessions in a bounded moka cache keyed by a random 256-bit id;
//! the browser holds only that id, sealed into the session cookie.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use tracing::debug;

use super::id_cookie::{IdCookie, SessionId};
use super::{LoadedSession, RequestCookies, Session, SessionError, SessionStore};
use crate::config::SessionConfig;

/// Cap on the cache's time-to-idle (ten years).
const MAX_IDLE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Sessions held by this process.
pub struct MemoryStore {
    cache: Cache<SessionId, Arc<Entry>>,
    cookie: IdCookie,
    idle_timeout: u64,
    max_lifetime: u64,
}

struct Entry {
    session: Arc<Session>,
    /// Unix seconds of the last successful load (or creation).
    last_seen: AtomicU64,
}

impl MemoryStore {
    pub fn new(config: &SessionConfig, secure: bool) -> Self {
        let cache = Cache::builder()
            .max_capacity(config.max_entries)
            // LRU always admits a new session; TinyLFU could refuse a fresh login when full.
            .eviction_policy(EvictionPolicy::lru())
            // moka panics beyond 1000 years; no session needs more than the cap.
            .time_to_idle(config.idle_timeout.min(MAX_IDLE))
            .build();
        MemoryStore {
            cache,
            cookie: IdCookie::new(config, secure),
            idle_timeout: config.idle_timeout.as_secs(),
            max_lifetime: config.max_lifetime.as_secs(),
        }
    }

    /// Sessions currently held (approximate until pending cache tasks have run).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Runs the cache's pending maintenance (evictions, expirations) now.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }

    /// The live session for one cookie value, or why not.
    fn lookup(&self, value: &str, now: u64) -> Result<Arc<Session>, &'static str> {
        let id = self.cookie.id(value).ok_or("cookie does not unseal")?;
        let entry = self.cache.get(&id).ok_or("unknown or evicted session")?;
        if entry.session.is_expired(now) {
            self.cache.invalidate(&id);
            return Err("max lifetime reached");
        }
        let last_seen = entry.last_seen.load(Ordering::Relaxed);
        if now.saturating_sub(last_seen) > self.idle_timeout {
            self.cache.invalidate(&id);
            return Err("idle timeout");
        }
        entry.last_seen.fetch_max(now, Ordering::Relaxed);
        Ok(Arc::clone(&entry.session))
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("cookie", &self.cookie)
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, cookies: &RequestCookies, now: u64) -> Option<LoadedSession> {
        let mut reason = "no session cookie";
        for value in cookies.get_all(self.cookie.name()) {
            match self.lookup(value, now) {
                Ok(session) => {
                    return Some(LoadedSession {
                        session,
                        set_cookies: Vec::new(),
                    })
                }
                Err(why) => reason = why,
            }
        }
        debug!(store = "memory", reason, "no session");
        None
    }

    async fn create(&self, mut session: Session, now: u64) -> Result<Vec<String>, SessionError> {
        session.prepare(now, self.max_lifetime)?;
        let id = IdCookie::new_id();
        let max_age = session.expires_at.saturating_sub(now);
        let entry = Entry {
            session: Arc::new(session),
            last_seen: AtomicU64::new(now),
        };
        self.cache.insert(id, Arc::new(entry));
        debug!(store = "memory", max_age, "session created");
        Ok(vec![self.cookie.set_cookie(&id, max_age)])
    }

    async fn update(
        &self,
        cookies: &RequestCookies,
        mut session: Session,
        now: u64,
    ) -> Result<Vec<String>, SessionError> {
        session.prepare(now, self.max_lifetime)?;
        let session = Arc::new(session);
        for id in self.cookie.ids(cookies) {
            if self.cache.contains_key(&id) {
                let entry = Entry {
                    session: Arc::clone(&session),
                    last_seen: AtomicU64::new(now),
                };
                self.cache.insert(id, Arc::new(entry));
                debug!(store = "memory", "session updated");
            }
        }
        Ok(Vec::new())
    }

    async fn destroy(&self, cookies: &RequestCookies) -> Vec<String> {
        for id in self.cookie.ids(cookies) {
            self.cache.invalidate(&id);
            debug!(store = "memory", "session destroyed");
        }
        self.cookie.clear_all(cookies)
    }
}
