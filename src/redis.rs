//! The connection to Redis, for what replicas share (`session.store: redis://…`): one
//! multiplexed connection that reconnects by itself (redis-rs `ConnectionManager`), a health
//! flag for `/_sso/readyz` kept current by a watchdog, and pub/sub messages (RESP3 pushes on the
//! same connection, resubscribed after a reconnect) dispatched to the handlers registered for
//! their channel. A handler also hears `None` when the connection dropped: messages may have
//! been missed, so local copies should be forgotten.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisError};

use crate::config::RedisConfig;

/// Every key and channel of ours starts with this.
pub const PREFIX: &str = "sso-proxy:";
/// How long one command may take before Redis counts as down.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the watchdog pings (and so how fast readiness follows Redis).
const WATCHDOG_EVERY: Duration = Duration::from_secs(1);

/// What a pub/sub handler hears: a message's payload, or `None` after a reconnection.
pub type Handler = Arc<dyn Fn(Option<&[u8]>) + Send + Sync>;

/// Why a Redis operation failed (never carries the URL's password).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisFailure {
    #[error("the shared session store (Redis at {0}) is not connected yet")]
    NotStarted(String),
    #[error("the shared session store (Redis at {at}) is unavailable: {reason}")]
    Unavailable { at: String, reason: String },
}

pub struct Redis {
    display: String,
    client: redis::Client,
    manager: OnceLock<ConnectionManager>,
    healthy: AtomicBool,
    handlers: Arc<Mutex<HashMap<Vec<u8>, Vec<Handler>>>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("at", &self.display)
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Parses the URL; connects only in [`Redis::start`].
    pub fn new(config: &RedisConfig) -> Result<Self, String> {
        let info = config
            .url
            .expose()
            .as_str()
            .into_connection_info()
            .map_err(|_| {
                format!(
                    "session.store: `{}` is not a valid Redis URL",
                    config.display
                )
            })?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(|_| {
            format!(
                "session.store: `{}` is not a valid Redis URL",
                config.display
            )
        })?;
        Ok(Redis {
            display: config.display.clone(),
            client,
            manager: OnceLock::new(),
            healthy: AtomicBool::new(false),
            handlers: Arc::default(),
        })
    }

    /// Where Redis is, password hidden.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Whether the last command (or watchdog ping) reached Redis.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Call `handler` with every message on `channel` (under [`PREFIX`]). Register before
    /// [`Redis::start`].
    pub fn on_message(&self, channel: &str, handler: Handler) {
        let name = format!("{PREFIX}{channel}").into_bytes();
        if let Ok(mut map) = self.handlers.lock() {
            map.entry(name).or_default().push(handler);
        }
    }

    /// Connect (lazily: a Redis that is down now is retried), subscribe to the registered
    /// channels, and run the watchdog. Must run inside the tokio runtime that outlives every
    /// use (the proxy's background runtime); a second call does nothing.
    pub async fn start(self: &Arc<Self>) {
        if self.manager.get().is_some() {
            return;
        }
        let handlers = Arc::clone(&self.handlers);
        let dispatch = move |push: PushInfo| -> Result<(), redis::aio::SendError> {
            dispatch(&handlers, push);
            Ok(())
        };
        let config = ConnectionManagerConfig::new()
            .set_push_sender(dispatch)
            .set_automatic_resubscription()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = match ConnectionManager::new_lazy_with_config(self.client.clone(), config) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(redis = %self.display, error = %describe(&e), "Redis connection could not be set up");
                return;
            }
        };
        if self.manager.set(manager).is_err() {
            return;
        }
        tokio::spawn(Arc::clone(self).watchdog());
    }

    /// Ping every second: keeps `is_healthy` current, makes the connection come back after an
    /// outage, and (re)subscribes until the subscriptions hold.
    async fn watchdog(self: Arc<Self>) {
        let mut subscribed = false;
        let mut was_healthy = None;
        loop {
            let ok = self.ping().await.is_ok();
            if !ok {
                subscribed = false;
            } else if !subscribed {
                subscribed = self.subscribe_all().await;
            }
            if was_healthy != Some(ok) {
                if ok {
                    tracing::info!(redis = %self.display, "Redis reachable");
                    // Back after an outage: messages sent meanwhile may have been missed.
                    if was_healthy.is_some() {
                        self.notify_all_reconnected();
                    }
                } else {
                    tracing::error!(redis = %self.display, "Redis unreachable; sessions held locally keep working, new logins fail until it is back");
                }
                was_healthy = Some(ok);
            }
            tokio::time::sleep(WATCHDOG_EVERY).await;
        }
    }

    async fn ping(&self) -> Result<(), RedisFailure> {
        self.query::<String>(redis::cmd("PING")).await.map(|_| ())
    }

    async fn subscribe_all(&self) -> bool {
        let Some(mut conn) = self.manager.get().cloned() else {
            return false;
        };
        let channels: Vec<Vec<u8>> = match self.handlers.lock() {
            Ok(map) => map.keys().cloned().collect(),
            Err(_) => return false,
        };
        for channel in channels {
            if let Err(e) = conn.subscribe(&channel).await {
                tracing::warn!(redis = %self.display, error = %describe(&e), "Redis subscribe failed; will retry");
                return false;
            }
        }
        true
    }

    fn notify_all_reconnected(&self) {
        let all: Vec<Handler> = match self.handlers.lock() {
            Ok(map) => map.values().flatten().cloned().collect(),
            Err(_) => return,
        };
        for handler in all {
            handler(None);
        }
    }

    /// Run one command. Failures mark Redis unhealthy and come back as [`RedisFailure`].
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, RedisFailure> {
        let Some(mut conn) = self.manager.get().cloned() else {
            return Err(RedisFailure::NotStarted(self.display.clone()));
        };
        match cmd.query_async::<T>(&mut conn).await {
            Ok(v) => {
                self.healthy.store(true, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => Err(self.failed(&e)),
        }
    }

    /// Publish `payload` on `channel` (under [`PREFIX`]).
    pub async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisFailure> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(format!("{PREFIX}{channel}")).arg(payload);
        self.query::<i64>(cmd).await.map(|_| ())
    }

    fn failed(&self, e: &RedisError) -> RedisFailure {
        // A server-side answer (wrong type, a script error) is not an outage.
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            self.healthy.store(false, Ordering::Relaxed);
        }
        tracing::debug!(redis = %self.display, error = %describe(e), "Redis command failed");
        RedisFailure::Unavailable {
            at: self.display.clone(),
            reason: describe(e),
        }
    }
}

/// The error's kind and the server's message, without connection details.
fn describe(e: &RedisError) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_owned()
    } else {
        match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code}: {detail}"),
            (Some(code), None) => code.to_owned(),
            _ => format!("{:?}", e.kind()),
        }
    }
}

/// Route a pub/sub message to its channel's handlers. Other pushes (subscription replies, the
/// library's disconnection notice) need nothing: while disconnected, local copies keep serving
/// (bounded by their TTL), and the watchdog tells the handlers when the connection is back.
fn dispatch(handlers: &Mutex<HashMap<Vec<u8>, Vec<Handler>>>, push: PushInfo) {
    if push.kind != PushKind::Message {
        return;
    }
    let Ok(map) = handlers.lock() else { return };
    let mut data = push.data.iter().filter_map(|v| match v {
        redis::Value::BulkString(b) => Some(b.as_slice()),
        _ => None,
    });
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    for handler in map.get(channel).into_iter().flatten() {
        handler(Some(payload));
    }
}
