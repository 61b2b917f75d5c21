//! The assertion replay cache: every accepted assertion id, kept until the assertion itself
//! expires. One per process (held by the app, not by a connection), so an admin edit that
//! rebuilds a connection does not forget which assertions were already used.

use std::time::Duration;

use moka::sync::Cache;

use super::verify::{ResponseError, VerifiedAssertion};

/// Assertion ids remembered at most.
const MAX_REPLAY_ENTRIES: u64 = 1_000_000;

struct UntilExpiry;

impl moka::Expiry<String, u64> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        ttl_secs: &u64,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(*ttl_secs))
    }
}

pub struct AssertionReplay {
    seen: Cache<String, u64>,
}

impl Default for AssertionReplay {
    fn default() -> Self {
        AssertionReplay {
            seen: Cache::builder()
                .max_capacity(MAX_REPLAY_ENTRIES)
                .expire_after(UntilExpiry)
                .build(),
        }
    }
}

impl AssertionReplay {
    /// Single use: the first call for an assertion (of connection `provider`) succeeds; any
    /// later one while the assertion could still be valid is a replay.
    pub fn remember(
        &self,
        provider: &str,
        a: &VerifiedAssertion,
        now: i64,
    ) -> Result<(), ResponseError> {
        let ttl = u64::try_from(a.valid_until.saturating_sub(now))
            .unwrap_or(0)
            .max(1);
        let key = format!("{provider}\n{}", a.id);
        if self.seen.entry(key).or_insert(ttl).is_fresh() {
            Ok(())
        } else {
            Err(ResponseError::Replayed)
        }
    }
}
