//! The ClearML user mapping shared by replicas. Each replica keeps its users in its own SQLite
//! database; with a Redis session store the mapping (which ClearML user a login is) is also kept
//! in Redis, so a user first seen on one replica is not created again in ClearML by another
//! (ClearML refuses a second user with the same e-mail and cannot look users up by e-mail).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::redis::{Redis, RedisFailure};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearmlMapping {
    pub id: String,
    pub role: String,
}

/// `None` inside: no shared store, every call is a no-op.
pub struct SharedMappings(Option<Arc<Redis>>);

impl SharedMappings {
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        SharedMappings(redis)
    }

    fn key(provider: &str, subject: &str) -> String {
        let hash = Sha256::digest(format!("{provider}\n{subject}"));
        crate::redis::key("clearml-user", &hash)
    }

    /// The mapping another replica stored, if any.
    pub async fn get(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<ClearmlMapping>, RedisFailure> {
        let Some(redis) = &self.0 else {
            return Ok(None);
        };
        let mut cmd = redis::cmd("GET");
        cmd.arg(Self::key(provider, subject));
        let stored: Option<Vec<u8>> = redis.query(cmd).await?;
        Ok(stored.and_then(|json| {
            serde_json::from_slice(&json)
                .inspect_err(
                    |e| tracing::debug!(error = %e, "a shared ClearML mapping does not parse"),
                )
                .ok()
        }))
    }

    pub async fn put(
        &self,
        provider: &str,
        subject: &str,
        mapping: &ClearmlMapping,
    ) -> Result<(), RedisFailure> {
        let Some(redis) = &self.0 else {
            return Ok(());
        };
        let json = serde_json::to_vec(mapping).unwrap_or_default();
        let mut cmd = redis::cmd("SET");
        cmd.arg(Self::key(provider, subject)).arg(json);
        redis.query::<String>(cmd).await.map(|_| ())
    }
}
