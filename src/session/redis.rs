//! The shared session store: sessions in Redis, so every replica knows every session, with a
//! short-lived copy in each replica's memory (`session.local_cache_ttl`) so most requests never
//! leave the process. The browser holds only the random 256-bit id, sealed into the session
//! cookie; Redis holds the session as JSON under the SHA-256 of that id, expiring after the idle
//! timeout (renewed on every read) and never outliving the session's absolute end.
//!
//! A logout (or back-channel end, or refresh) on one replica publishes the id hash; every replica
//! drops its copy at once. When Redis is unreachable, sessions still in a replica's memory keep
//! working for up to the local TTL, new logins fail with a page naming the store, and
//! `/_sso/readyz` says not ready; the connection comes back by itself.

use std::sync::Arc;

use moka::sync::Cache;
use sha2::{Digest, Sha256};
use tracing::debug;

use super::id_cookie::{IdCookie, SessionId};
use super::{LoadedSession, RequestCookies, Session, SessionError, SessionStore};
use crate::config::{RedisConfig, SessionConfig};
use crate::redis::{Redis, RedisFailure};

/// The channel on which ended or changed sessions are announced (payload: the key hash).
const CHANNEL: &str = "session-changed";
/// Sessions a replica keeps a local copy of at most.
const LOCAL_ENTRIES: u64 = 1_000_000;

/// SHA-256 of the id: what Redis and the channel see (a Redis dump holds no usable id).
type KeyHash = [u8; 32];

pub struct RedisStore {
    redis: Arc<Redis>,
    local: Cache<KeyHash, Arc<Session>>,
    cookie: IdCookie,
    idle_timeout: u64,
    max_lifetime: u64,
}

impl RedisStore {
    pub fn new(
        config: &SessionConfig,
        redis_config: &RedisConfig,
        redis: Arc<Redis>,
        secure: bool,
    ) -> Self {
        let local: Cache<KeyHash, Arc<Session>> = Cache::builder()
            .max_capacity(LOCAL_ENTRIES)
            .time_to_live(redis_config.local_cache_ttl)
            .build();
        let forget = local.clone();
        redis.on_message(
            CHANNEL,
            Arc::new(move |payload: Option<&[u8]>| match payload {
                Some(hash) => {
                    if let Ok(hash) = KeyHash::try_from(hash) {
                        forget.invalidate(&hash);
                    }
                }
                // Back after an outage: announcements may have been missed meanwhile.
                None => forget.invalidate_all(),
            }),
        );
        RedisStore {
            redis,
            local,
            cookie: IdCookie::new(config, secure),
            idle_timeout: config.idle_timeout.as_secs(),
            max_lifetime: config.max_lifetime.as_secs(),
        }
    }

    fn key_hash(id: &SessionId) -> KeyHash {
        Sha256::digest(id).into()
    }

    fn redis_key(hash: &KeyHash) -> String {
        crate::redis::key("session", hash)
    }

    /// The set of sessions (key hashes) of one IdP session (`sid`) or user (`sub`), for
    /// back-channel logout.
    fn index_key(provider: &str, kind: &str, value: &str) -> String {
        let hash: [u8; 32] = Sha256::digest(format!("{provider}\n{kind}\n{value}")).into();
        crate::redis::key(&format!("by-{kind}"), &hash)
    }

    /// Seconds Redis keeps the session from `now`: the idle timeout, never past its end.
    fn ttl(&self, session: &Session, now: u64) -> u64 {
        self.idle_timeout
            .min(session.expires_at.saturating_sub(now))
            .max(1)
    }

    async fn lookup(&self, value: &str, now: u64) -> Result<Arc<Session>, &'static str> {
        let id = self.cookie.id(value).ok_or("cookie does not unseal")?;
        let hash = Self::key_hash(&id);
        if let Some(session) = self.local.get(&hash) {
            if session.is_expired(now) {
                self.local.invalidate(&hash);
                return Err("max lifetime reached");
            }
            return Ok(session);
        }
        let mut cmd = redis::cmd("GETEX");
        cmd.arg(Self::redis_key(&hash))
            .arg("EX")
            .arg(self.idle_timeout.max(1));
        let stored: Option<Vec<u8>> = self.redis.query(cmd).await.map_err(|e| {
            tracing::warn!(error = %e, "session lookup failed");
            "the session store is unavailable"
        })?;
        let stored = stored.ok_or("unknown, idle or ended session")?;
        let session: Session = serde_json::from_slice(&stored).map_err(|e| {
            debug!(error = %e, "a stored session does not parse");
            "stored session does not parse"
        })?;
        if session.is_expired(now) {
            return Err("max lifetime reached");
        }
        let session = Arc::new(session);
        self.local.insert(hash, Arc::clone(&session));
        Ok(session)
    }

    /// Write the session under `hash`; `only_if` is `NX` (new) or `XX` (existing).
    async fn store(
        &self,
        hash: &KeyHash,
        session: &Session,
        now: u64,
        only_if: &str,
    ) -> Result<bool, SessionError> {
        let json = serde_json::to_vec(session).map_err(SessionError::Serialize)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(Self::redis_key(hash))
            .arg(json)
            .arg("EX")
            .arg(self.ttl(session, now))
            .arg(only_if);
        let written: Option<String> = self.redis.query(cmd).await.map_err(unavailable)?;
        Ok(written.is_some())
    }

    /// Delete one session from Redis and tell every replica; `true` when it still existed.
    async fn destroy_hash(&self, hash: &KeyHash) -> Result<bool, RedisFailure> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(Self::redis_key(hash));
        let deleted = self.redis.query::<i64>(cmd).await.map(|n| n > 0);
        self.announce(hash).await;
        deleted
    }

    /// Tell every replica (this one included) to drop its copy.
    async fn announce(&self, hash: &KeyHash) {
        self.local.invalidate(hash);
        if let Err(e) = self.redis.publish(CHANNEL, hash).await {
            tracing::warn!(error = %e, "could not announce a session change to the other replicas");
        }
    }
}

fn unavailable(e: RedisFailure) -> SessionError {
    SessionError::Unavailable(e.to_string())
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.redis)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, cookies: &RequestCookies, now: u64) -> Option<LoadedSession> {
        let mut reason = "no session cookie";
        for value in cookies.get_all(self.cookie.name()) {
            match self.lookup(value, now).await {
                Ok(session) => {
                    return Some(LoadedSession {
                        session,
                        set_cookies: Vec::new(),
                    })
                }
                Err(why) => reason = why,
            }
        }
        debug!(store = "redis", reason, "no session");
        None
    }

    async fn create(&self, mut session: Session, now: u64) -> Result<Vec<String>, SessionError> {
        session.prepare(now, self.max_lifetime)?;
        let id = IdCookie::new_id();
        let hash = Self::key_hash(&id);
        if !self.store(&hash, &session, now, "NX").await? {
            // 256 random bits never collide; refuse rather than overwrite.
            return Err(SessionError::Unavailable(
                "a new session id was already taken".to_owned(),
            ));
        }
        let max_age = session.expires_at.saturating_sub(now);
        // Findable by the IdP's `sid`/`sub` for back-channel logout.
        let provider = &session.identity.provider;
        for (kind, value) in [("sid", &session.sid), ("sub", &session.sub)] {
            let Some(value) = value else { continue };
            let index = Self::index_key(provider, kind, value);
            let mut add = redis::cmd("SADD");
            add.arg(&index).arg(hex::encode(hash));
            let mut expire = redis::cmd("EXPIRE");
            expire.arg(&index).arg(self.max_lifetime.max(1));
            let added = self.redis.query::<i64>(add).await;
            let expiring = self.redis.query::<i64>(expire).await;
            if let Err(e) = added.and(expiring) {
                let _ = self.destroy_hash(&hash).await;
                return Err(unavailable(e));
            }
        }
        self.local.insert(hash, Arc::new(session));
        debug!(store = "redis", max_age, "session created");
        Ok(vec![self.cookie.set_cookie(&id, max_age)])
    }

    async fn update(
        &self,
        cookies: &RequestCookies,
        mut session: Session,
        now: u64,
    ) -> Result<Vec<String>, SessionError> {
        session.prepare(now, self.max_lifetime)?;
        let ids: Vec<_> = self.cookie.ids(cookies).collect();
        for id in ids {
            let hash = Self::key_hash(&id);
            if self.store(&hash, &session, now, "XX").await? {
                self.announce(&hash).await;
                self.local.insert(hash, Arc::new(session));
                return Ok(Vec::new());
            }
        }
        // Ended meanwhile (logout elsewhere): nothing to update.
        Ok(Vec::new())
    }

    async fn destroy(&self, cookies: &RequestCookies) -> Vec<String> {
        let ids: Vec<_> = self.cookie.ids(cookies).collect();
        for id in ids {
            let hash = Self::key_hash(&id);
            if let Err(e) = self.destroy_hash(&hash).await {
                tracing::error!(error = %e, "a logged-out session could not be deleted from the shared store; it ends at its idle timeout");
            }
        }
        self.cookie.clear_all(cookies)
    }

    async fn end_matching(
        &self,
        provider: &str,
        kind: &str,
        value: &str,
    ) -> Result<usize, SessionError> {
        let index = Self::index_key(provider, kind, value);
        let mut members = redis::cmd("SMEMBERS");
        members.arg(&index);
        let members: Vec<String> = self.redis.query(members).await.map_err(unavailable)?;
        let mut ended = 0;
        for member in members {
            let mut hash: KeyHash = [0; 32];
            if hex::decode_to_slice(&member, &mut hash).is_err() {
                continue;
            }
            if self.destroy_hash(&hash).await.map_err(unavailable)? {
                ended += 1;
            }
        }
        let mut del = redis::cmd("DEL");
        del.arg(&index);
        self.redis.query::<i64>(del).await.map_err(unavailable)?;
        Ok(ended)
    }

    async fn start(&self) {
        self.redis.start().await;
    }

    fn shared(&self) -> Option<Arc<Redis>> {
        Some(Arc::clone(&self.redis))
    }

    fn ready(&self) -> Result<(), String> {
        if self.redis.is_healthy() {
            Ok(())
        } else {
            Err(format!("session store (Redis at {})", self.redis.display()))
        }
    }
}
