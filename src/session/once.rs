//! Things that may be used only once: a login's `state`, a SAML assertion id, a back-channel
//! logout token's `jti`, and a refresh token (a lock: one replica refreshes, the others wait for
//! its result). Each is remembered until it could no longer be valid anyway. With a
//! shared store (`session.store: redis://…`) the memory is Redis (`SET NX EX`), so a response
//! replayed at another replica is refused too; otherwise it is this process's memory.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use sha2::{Digest, Sha256};

use crate::redis::{Redis, RedisFailure};

/// Marks remembered at most in memory (LRU beyond that: the oldest are forgotten first).
const MAX_LOCAL_MARKS: u64 = 1_000_000;

/// What is being used once; names the Redis key space.
#[derive(Debug, Clone, Copy)]
pub enum Once {
    LoginState,
    SamlAssertion,
    LogoutToken,
    RefreshToken,
}

impl Once {
    fn name(self) -> &'static str {
        match self {
            Once::LoginState => "state",
            Once::SamlAssertion => "assertion",
            Once::LogoutToken => "jti",
            Once::RefreshToken => "refresh",
        }
    }
}

struct UntilExpiry;

impl moka::Expiry<[u8; 32], u64> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        ttl_secs: &u64,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(*ttl_secs))
    }
}

pub struct UseOnce {
    local: Cache<[u8; 32], u64>,
    redis: Option<Arc<Redis>>,
}

impl UseOnce {
    /// `redis`: the shared store's connection, when there is one.
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        UseOnce {
            local: Cache::builder()
                .max_capacity(MAX_LOCAL_MARKS)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .expire_after(UntilExpiry)
                .build(),
            redis,
        }
    }

    /// Whether the marks are shared with other replicas (in Redis).
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// `Ok(true)` the first time `what`/`key` is used within `ttl`, `Ok(false)` after that.
    /// `Err` when the shared store cannot answer: the caller refuses (it cannot know).
    pub async fn first_use(
        &self,
        what: Once,
        key: &[u8],
        ttl: Duration,
    ) -> Result<bool, RedisFailure> {
        let mut hasher = Sha256::new();
        hasher.update(what.name().as_bytes());
        hasher.update([0]);
        hasher.update(key);
        let hash: [u8; 32] = hasher.finalize().into();
        let secs = ttl.as_secs().max(1);
        let Some(redis) = &self.redis else {
            return Ok(self.local.entry(hash).or_insert(secs).is_fresh());
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(crate::redis::key(&format!("once:{}", what.name()), &hash))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(secs);
        let set: Option<String> = redis.query(cmd).await?;
        Ok(set.is_some())
    }
}

impl std::fmt::Debug for UseOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UseOnce")
            .field("shared", &self.redis.is_some())
            .field("local_marks", &self.local.entry_count())
            .finish()
    }
}
