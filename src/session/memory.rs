//! The in-memory session store: sessions in a bounded moka cache keyed by a random 256-bit id;
//! the browser holds only that id, sealed into the session cookie.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use rand::RngCore;
use tracing::debug;

use super::cookies::{self, SameSite};
use super::{
    clear_all, CookieNames, LoadedSession, RequestCookies, Sealer, Session, SessionError,
    SessionStore,
};
use crate::config::SessionConfig;

/// Cap on the cache's time-to-idle (ten years).
const MAX_IDLE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A session id: 256 bits from a CSPRNG.
type SessionId = [u8; 32];

/// Sessions held by this process.
pub struct MemoryStore {
    cache: Cache<SessionId, Arc<Entry>>,
    sealer: Arc<Sealer>,
    names: CookieNames,
    secure: bool,
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
            sealer: Arc::new(Sealer::new(config.secret.expose())),
            names: cookies::cookie_names(config, secure),
            secure,
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

    fn session_id(&self, value: &str) -> Option<SessionId> {
        let plain = self.sealer.unseal(self.names.session(), value)?;
        SessionId::try_from(plain.as_slice()).ok()
    }

    /// The live session for one cookie value, or why not.
    fn lookup(&self, value: &str, now: u64) -> Result<Arc<Session>, &'static str> {
        let id = self.session_id(value).ok_or("cookie does not unseal")?;
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
            .field("cookie", &self.names.session())
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, cookies: &RequestCookies, now: u64) -> Option<LoadedSession> {
        let mut reason = "no session cookie";
        for value in cookies.get_all(self.names.session()) {
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
        let mut id: SessionId = [0; 32];
        rand::thread_rng().fill_bytes(&mut id);
        let max_age = session.expires_at.saturating_sub(now);
        let entry = Entry {
            session: Arc::new(session),
            last_seen: AtomicU64::new(now),
        };
        self.cache.insert(id, Arc::new(entry));
        let value = self.sealer.seal(self.names.session(), &id);
        debug!(store = "memory", max_age, "session created");
        Ok(vec![cookies::set_cookie(
            self.names.session(),
            &value,
            max_age,
            self.secure,
            SameSite::Lax,
        )])
    }

    async fn update(
        &self,
        cookies: &RequestCookies,
        mut session: Session,
        now: u64,
    ) -> Result<Vec<String>, SessionError> {
        session.prepare(now, self.max_lifetime)?;
        let session = Arc::new(session);
        for value in cookies.get_all(self.names.session()) {
            if let Some(id) = self.session_id(value) {
                if self.cache.contains_key(&id) {
                    let entry = Entry {
                        session: Arc::clone(&session),
                        last_seen: AtomicU64::new(now),
                    };
                    self.cache.insert(id, Arc::new(entry));
                    debug!(store = "memory", "session updated");
                }
            }
        }
        Ok(Vec::new())
    }

    async fn destroy(&self, cookies: &RequestCookies) -> Vec<String> {
        for value in cookies.get_all(self.names.session()) {
            if let Some(id) = self.session_id(value) {
                self.cache.invalidate(&id);
                debug!(store = "memory", "session destroyed");
            }
        }
        clear_all(&self.names, cookies, self.secure)
    }
}
