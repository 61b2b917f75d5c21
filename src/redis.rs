//! The connection to Redis, for what replicas share (`session.store: redis://…`): one
//! multiplexed connection that reconnects by itself (redis-rs `ConnectionManager`), a health
//! flag for `/_sso/readyz` kept current by a watchdog, and pub/sub messages (RESP3 pushes on the
//! same connection, resubscribed after a reconnect) dispatched to the handlers registered for
//! their channel. A handler also hears `None` when the connection dropped: messages may have
//! been missed, so local copies should be forgotten.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisError};

use crate::config::RedisConfig;

/// Every key and channel of ours starts with this.
pub const PREFIX: &str = "sso-proxy:";

/// `sso-proxy:<space>:<hash in hex>`: how every key of ours is named.
pub fn key(space: &str, hash: &[u8]) -> String {
    format!("{PREFIX}{space}:{}", hex::encode(hash))
}
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
    target: Target,
    manager: ArcSwapOption<Conn>,
    /// The master's address the manager talks to (Sentinel: changes at a failover).
    master: Mutex<Option<String>>,
    started: AtomicBool,
    healthy: AtomicBool,
    /// Commands that failed (for `sso_proxy_store_errors_total{store="redis"}`).
    errors: AtomicU64,
    handlers: Handlers,
}

type Handlers = Arc<Mutex<HashMap<Vec<u8>, Vec<Handler>>>>;

/// Where the data lives: one server, the master that Sentinel names, or a Cluster.
enum Target {
    Single(redis::Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    Cluster(ClusterClient),
}

/// A connection of either kind; both reconnect by themselves.
#[derive(Clone)]
enum Conn {
    Manager(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        match self {
            Conn::Manager(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => cmd.query_async(c).await,
        }
    }

    async fn subscribe(&mut self, channel: &[u8]) -> redis::RedisResult<()> {
        match self {
            Conn::Manager(c) => c.subscribe(channel).await,
            Conn::Cluster(c) => c.subscribe(channel).await,
        }
    }
}

/// `redis+sentinel://[:password@]host[:port][,host[:port]...]/<service>[/<db>]`, split up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// `(host, port)` of each Sentinel (port 26379 when not given).
    pub sentinels: Vec<(String, u16)>,
    pub service: String,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// `redis+cluster://[:password@]host:port[,host:port...]`: some of the Cluster's nodes.
pub struct ClusterUrl;

impl ClusterUrl {
    pub const SCHEME: &'static str = "redis+cluster://";

    /// The node URLs (`redis://[:password@]host:port`) for the cluster client.
    pub fn parse(text: &str) -> Result<Vec<String>, String> {
        let rest = text
            .strip_prefix(Self::SCHEME)
            .ok_or("a Cluster URL starts with redis+cluster://")?;
        let (userinfo, hosts) = match rest.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, rest),
        };
        let hosts = hosts.trim_end_matches('/');
        if hosts.contains('/') {
            return Err("a Cluster has only database 0: no path after the nodes".to_owned());
        }
        let mut nodes = Vec::new();
        for host in hosts.split(',') {
            let (name, port) = host
                .rsplit_once(':')
                .ok_or_else(|| format!("`{host}`: give each node as host:port"))?;
            port.parse::<u16>()
                .map_err(|_| format!("`{host}`: the port is not a number"))?;
            if name.is_empty() {
                return Err("a Cluster node's host is empty".to_owned());
            }
            nodes.push(match userinfo {
                Some(u) => format!("redis://{u}@{name}:{port}"),
                None => format!("redis://{name}:{port}"),
            });
        }
        Ok(nodes)
    }
}

impl SentinelUrl {
    pub const SCHEME: &'static str = "redis+sentinel://";

    /// Parse a Sentinel URL; errors name the part that is wrong (never the password).
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix(Self::SCHEME)
            .ok_or("a Sentinel URL starts with redis+sentinel://")?;
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let decode = |v: &str| {
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8()
                        .map(|c| c.into_owned())
                        .map_err(|_| "the user or password is not UTF-8".to_owned())
                };
                match u.split_once(':') {
                    Some((user, pw)) => (
                        Some(decode(user)?).filter(|s| !s.is_empty()),
                        Some(decode(pw)?),
                    ),
                    None => (Some(decode(u)?).filter(|s| !s.is_empty()), None),
                }
            }
        };
        let mut parts = rest.split('/');
        let hosts = parts.next().unwrap_or_default();
        let service = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or(
                "name the monitored master after the hosts: redis+sentinel://host:26379/mymaster",
            )?
            .to_owned();
        let db = match parts.next().filter(|s| !s.is_empty()) {
            None => 0,
            Some(db) => db
                .parse::<u16>()
                .map(i64::from)
                .map_err(|_| "the database after the master name must be a number, like /0")?,
        };
        if parts.next().is_some() {
            return Err("too many path segments: use /<master name>[/<db>]".to_owned());
        }
        let mut sentinels = Vec::new();
        for host in hosts.split(',') {
            let (name, port) = match host.rsplit_once(':') {
                Some((name, port)) => (
                    name,
                    port.parse::<u16>()
                        .map_err(|_| format!("`{host}`: the port is not a number"))?,
                ),
                None => (host, 26379),
            };
            if name.is_empty() {
                return Err("a Sentinel host is empty".to_owned());
            }
            sentinels.push((name.to_owned(), port));
        }
        Ok(SentinelUrl {
            sentinels,
            service,
            db,
            username,
            password,
        })
    }
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
        let url = config.url.expose();
        let handlers: Handlers = Arc::default();
        let target = if url.starts_with(SentinelUrl::SCHEME) {
            Target::Sentinel(tokio::sync::Mutex::new(
                Self::sentinel_client(url)
                    .map_err(|e| format!("session.store: `{}`: {e}", config.display))?,
            ))
        } else if url.starts_with(ClusterUrl::SCHEME) {
            Target::Cluster(
                Self::cluster_client(url, &handlers)
                    .map_err(|e| format!("session.store: `{}`: {e}", config.display))?,
            )
        } else {
            Target::Single(Self::single_client(config)?)
        };
        Ok(Redis {
            display: config.display.clone(),
            target,
            manager: ArcSwapOption::empty(),
            master: Mutex::new(None),
            started: AtomicBool::new(false),
            healthy: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            handlers,
        })
    }

    fn cluster_client(url: &str, handlers: &Handlers) -> Result<ClusterClient, String> {
        let handlers = Arc::clone(handlers);
        let push = move |push: PushInfo| -> Result<(), redis::aio::SendError> {
            dispatch(&handlers, push);
            Ok(())
        };
        ClusterClientBuilder::new(ClusterUrl::parse(url)?)
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(push)
            .connection_timeout(RESPONSE_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(2)
            .build()
            .map_err(|e| describe(&e))
    }

    fn sentinel_client(url: &str) -> Result<SentinelClient, String> {
        let parsed = SentinelUrl::parse(url)?;
        let nodes = parsed
            .sentinels
            .iter()
            .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port));
        let mut builder =
            SentinelClientBuilder::new(nodes, &parsed.service, SentinelServerType::Master)
                .map_err(|e| describe(&e))?
                .set_client_to_redis_db(parsed.db)
                .set_client_to_redis_protocol(ProtocolVersion::RESP3);
        if let Some(user) = &parsed.username {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = &parsed.password {
            builder = builder.set_client_to_redis_password(password);
        }
        builder.build().map_err(|e| describe(&e))
    }

    fn single_client(config: &RedisConfig) -> Result<redis::Client, String> {
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
        redis::Client::open(info.set_redis_settings(settings)).map_err(|_| {
            format!(
                "session.store: `{}` is not a valid Redis URL",
                config.display
            )
        })
    }

    /// Where Redis is, password hidden.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Commands that failed since the start.
    pub fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
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
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Target::Single(client) = &self.target {
            if let Some(manager) = self.manager_for(client.clone()) {
                self.manager.store(Some(Arc::new(Conn::Manager(manager))));
            }
        }
        tokio::spawn(Arc::clone(self).watchdog());
    }

    /// A lazily connecting manager for `client`, dispatching pushes to the handlers.
    fn manager_for(&self, client: redis::Client) -> Option<ConnectionManager> {
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
        match ConnectionManager::new_lazy_with_config(client, config) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(redis = %self.display, error = %describe(&e), "Redis connection could not be set up");
                None
            }
        }
    }

    /// Sentinel: ask for the current master and, when it moved (or at the start), talk to the
    /// new one from now on.
    async fn follow_master(&self) {
        if let Target::Cluster(client) = &self.target {
            if self.manager.load().is_none() {
                match client.get_async_connection().await {
                    Ok(conn) => self.manager.store(Some(Arc::new(Conn::Cluster(conn)))),
                    Err(e) => {
                        tracing::warn!(redis = %self.display, error = %describe(&e), "Redis Cluster not reachable yet")
                    }
                }
            }
            return;
        }
        let Target::Sentinel(sentinel) = &self.target else {
            return;
        };
        let client = match sentinel.lock().await.async_get_client().await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(redis = %self.display, error = %describe(&e), "Sentinel did not name a master");
                return;
            }
        };
        let address = client.get_connection_info().addr().to_string();
        let moved = match self.master.lock() {
            Ok(mut current) if current.as_deref() != Some(address.as_str()) => {
                *current = Some(address.clone());
                true
            }
            _ => false,
        };
        if moved {
            if let Some(manager) = self.manager_for(client) {
                tracing::info!(redis = %self.display, master = %address, "Redis master (from Sentinel)");
                self.manager.store(Some(Arc::new(Conn::Manager(manager))));
            }
        }
    }

    /// Ping every second: keeps `is_healthy` current, makes the connection come back after an
    /// outage, and (re)subscribes until the subscriptions hold.
    async fn watchdog(self: Arc<Self>) {
        let mut subscribed = false;
        let mut was_healthy = None;
        loop {
            if self.manager.load().is_none() || !self.is_healthy() {
                self.follow_master().await;
                subscribed = false;
            }
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
        let Some(mut conn) = self.manager.load_full().map(|m| (*m).clone()) else {
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
        let Some(mut conn) = self.manager.load_full().map(|m| (*m).clone()) else {
            return Err(RedisFailure::NotStarted(self.display.clone()));
        };
        match conn.query::<T>(&cmd).await {
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
        self.errors.fetch_add(1, Ordering::Relaxed);
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
fn dispatch(handlers: &Handlers, push: PushInfo) {
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

#[cfg(test)]
mod tests {
    use super::SentinelUrl;

    #[test]
    fn sentinel_urls_name_hosts_master_and_database() {
        let u = SentinelUrl::parse("redis+sentinel://:p%40ss@s1:26380,s2/mymaster/3").unwrap();
        assert_eq!(
            u.sentinels,
            [("s1".to_owned(), 26380), ("s2".to_owned(), 26379)]
        );
        assert_eq!((u.service.as_str(), u.db), ("mymaster", 3));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.username, None);
        let plain = SentinelUrl::parse("redis+sentinel://s1/main").unwrap();
        assert_eq!((plain.db, plain.password), (0, None));
        for (bad, needle) in [
            ("redis+sentinel://s1", "monitored master"),
            ("redis+sentinel://s1:x/m", "port"),
            ("redis+sentinel://s1/m/db", "database"),
            ("redis+sentinel://,s2/m", "empty"),
            ("redis+sentinel://s1/m/0/x", "too many"),
            ("redis://s1/m", "redis+sentinel://"),
        ] {
            let e = SentinelUrl::parse(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
