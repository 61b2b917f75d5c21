//! The shared state every request sees (`App`), built once from the validated [`Config`],
//! and `run`, which starts the pingora server with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::admin::AdminState;
use crate::clearml::Bridge;
use crate::config::{Config, Sources};
use crate::config::{SessionConfig, SessionStoreKind};
use crate::providers::backchannel::Revocations;
use crate::providers::jwks::JwksCache;
use crate::providers::refresh::Refresher;
use crate::providers::retired::Retired;
use crate::providers::Registry;
use crate::proxy::decide::Routes;
use crate::proxy::headers::StripRules;
use crate::proxy::identity_token::IdentitySigner;
use crate::reload::Reloader;
use crate::session::memory::MemoryStore;
use crate::session::{self, CookieNames, PendingStore, SessionStore, UseOnce};
use crate::store::shared::SharedMappings;
use crate::store::sqlite::SqliteStore;
use crate::store::{StoreError, UserStore};
use crate::telemetry::metrics::{Metrics, MetricsService};
use crate::tls::{CertPair, CertResolver};

/// The clock, injectable for tests.
pub trait Clock: Send + Sync {
    /// Unix seconds.
    fn now(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
    #[error("could not set up connection {0}")]
    Provider(String),
    #[error("upstream {0} does not resolve to an address")]
    Upstream(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    SessionStore(String),
}

/// Everything a request handler needs.
pub struct App {
    pub config: Arc<Config>,
    pub registry: ArcSwap<Registry>,
    /// Connections an admin edit replaced, for the logins started on them.
    pub retired: Retired,
    /// Login states, SAML assertions and logout tokens already used (shared with the other
    /// replicas when the session store is).
    pub once: Arc<UseOnce>,
    /// The ClearML user mapping shared by replicas (Redis), next to `users`.
    pub shared_users: SharedMappings,
    pub sessions: Arc<dyn SessionStore>,
    /// The same store when it is the memory store, for the sessions gauge of the metrics.
    pub memory_sessions: Option<Arc<MemoryStore>>,
    pub pending: PendingStore,
    pub cookie_names: CookieNames,
    pub routes: Routes,
    pub strip: StripRules,
    pub http: reqwest::Client,
    pub jwks: Arc<JwksCache>,
    /// `public_url` is https: cookies get `Secure` and `__Host-`.
    pub secure: bool,
    /// Upstream address, resolved at start.
    pub upstream_addr: SocketAddr,
    /// Users seen logging in (until the admin plane's store exists; lost on restart).
    /// Users seen at login and their ClearML mapping (SQLite at `state.path`).
    pub users: Arc<dyn UserStore>,
    /// The ClearML bridge, when enabled.
    pub bridge: Option<Bridge>,
    /// The admin plane: its store (connections, groups, invites, audit log) and Test Provider.
    pub admin: AdminState,
    pub refresher: Refresher,
    pub revocations: Revocations,
    pub metrics: Arc<Metrics>,
    /// Signs `X-Sso-Identity` and publishes `/_sso/jwks.json`.
    pub identity_signer: Option<IdentitySigner>,
    pub clock: Arc<dyn Clock>,
    /// Requests being served (graceful shutdown waits for them).
    pub in_flight: crate::shutdown::InFlight,
}

impl App {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sso-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StartError::HttpClient(e.to_string()))?;
        let jwks = Arc::new(JwksCache::new(http.clone()));
        let jwks_http = http.clone();
        let registry = Registry::build(&config.providers, &config.public_url, &http, &jwks)
            .map_err(|e| StartError::Provider(e.to_string()))?
            .with_saml(&config.saml_providers, &config.public_url, &http)
            .map_err(|e| StartError::Provider(e.to_string()))?;
        let store = Arc::new(SqliteStore::open(&config.state_path)?);
        let admin = AdminState::new(store.clone());
        let registry = admin.load_stored(registry, &config, &http, &jwks);
        let secure = config.public_url.scheme() == "https";
        let upstream_addr = resolve(&config.upstream)?;
        let (sessions, memory_sessions) =
            session_store(&config.session, secure).map_err(StartError::SessionStore)?;
        let once = Arc::new(UseOnce::new(sessions.shared()));
        let shared_users = SharedMappings::new(sessions.shared());
        Ok(App {
            pending: session::build_pending(&config.session, secure, once.clone()),
            sessions,
            memory_sessions,
            once,
            shared_users,
            cookie_names: session::cookie_names(&config.session, secure),
            routes: Routes {
                skip_auth: config.skip_auth.clone(),
                api_routes: config.api_routes.clone(),
            },
            strip: StripRules::new(&config.headers, &[]),
            registry: ArcSwap::from_pointee(registry),
            retired: Retired::new(Duration::from_secs(session::pending::PENDING_TTL)),
            http,
            jwks,
            secure,
            upstream_addr,
            users: store,
            admin,
            bridge: config
                .clearml
                .clone()
                .map(|c| Bridge::new(c, jwks_http.clone())),
            refresher: Refresher::default(),
            revocations: Revocations::new(config.session.max_lifetime),
            metrics: Arc::new(Metrics::default()),
            identity_signer: IdentitySigner::new(
                config.session.secret.expose(),
                config.public_url.as_str(),
            ),
            clock,
            in_flight: Default::default(),
            config: Arc::new(config),
        })
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Ready when every active connection has its endpoints.
    pub fn not_ready(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .registry
            .load()
            .active()
            .into_iter()
            .filter(|p| !p.is_ready())
            .map(|p| p.id().to_owned())
            .collect();
        if self.bridge.as_ref().is_some_and(|b| !b.is_ready()) {
            missing.push("clearml".to_owned());
        }
        if let Err(what) = self.sessions.ready() {
            missing.push(what);
        }
        missing
    }

    /// Check the ClearML bridge's credential until it works (retrying with backoff).
    pub async fn check_bridge_until_ready(self: Arc<Self>) {
        let Some(bridge) = &self.bridge else { return };
        let mut delay = Duration::from_millis(250);
        loop {
            match bridge.check().await {
                Ok(()) => {
                    tracing::info!(api = %bridge.config.api_url, "ClearML bridge ready");
                    return;
                }
                Err(e) => tracing::error!(error = %e, "ClearML bridge check failed; will retry"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// Run discovery for every connection still missing its metadata, retrying with backoff
    /// until all are ready. Runs in the background for the life of the process.
    pub async fn discover_until_ready(self: Arc<Self>) {
        let mut delay = Duration::from_millis(250);
        loop {
            let registry = self.registry.load_full();
            let mut pending = 0;
            for p in registry.all().filter(|p| !p.is_ready()) {
                if let Err(e) = p.discover().await {
                    pending += 1;
                    tracing::warn!(provider = %p.id(), error = %e, "discovery failed; will retry");
                } else {
                    tracing::info!(provider = %p.id(), "connection ready");
                }
            }
            if pending == 0 {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// Whether a user may count as known (for `create_new_users: false`): seen before through
    /// this connection, an email seen before, listed in `directory.known_users`, or invited.
    /// `email` must be one the IdP verified ([`crate::identity::Admission::trusted_email`]).
    pub fn is_known_user(&self, provider: &str, subject: &str, email: Option<&str>) -> bool {
        let listed = email.is_some_and(|e| {
            self.config
                .directory
                .known_users
                .iter()
                .any(|k| k.eq_ignore_ascii_case(e))
        });
        let seen = self.users.get(provider, subject).ok().flatten().is_some();
        let email_seen = email.is_some_and(|e| self.users.email_known(e).unwrap_or(false));
        listed || seen || email_seen || email.is_some_and(|e| self.admin.is_invited(e))
    }

    /// Local group names: `directory.groups` plus the groups made in the admin plane.
    pub fn known_groups(&self) -> Vec<String> {
        let mut groups = self.config.directory.groups.clone();
        groups.extend(self.admin.group_names());
        groups
    }
}

/// The session store, and the memory store again when that is the one (for the metrics).
type Stores = (Arc<dyn SessionStore>, Option<Arc<MemoryStore>>);

/// The configured session store, and a handle on it when it is the memory store (the sessions
/// gauge of the metrics; the cookie and Redis stores report none).
fn session_store(config: &SessionConfig, secure: bool) -> Result<Stores, String> {
    match config.store {
        SessionStoreKind::Memory => {
            let store = Arc::new(MemoryStore::new(config, secure));
            Ok((store.clone(), Some(store)))
        }
        _ => Ok((session::build_store(config, secure)?, None)),
    }
}

fn resolve(url: &url::Url) -> Result<SocketAddr, StartError> {
    use std::net::ToSocketAddrs;
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| StartError::Upstream(url.to_string()))
}

/// Start the server and serve until SIGTERM/SIGINT. Discovery runs in the background; the
/// listener answers at once (`/_sso/readyz` tells when the connections are usable). SIGHUP
/// (and `watch_config`) reload the configuration from `sources` ([`crate::reload`]).
pub fn run(config: Config, sources: Sources) -> Result<(), RunError> {
    use pingora::server::configuration::ServerConf;
    use pingora::server::Server;

    let listen = config.listen.to_string();
    let tls = config.tls.clone();
    let conf = ServerConf {
        threads: config.threads,
        grace_period_seconds: Some(crate::shutdown::GRACE_PERIOD_SECS),
        graceful_shutdown_timeout_seconds: Some(1),
        ca_file: config
            .upstream_ca_file
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        ..ServerConf::default()
    };
    let metrics_listen = config.metrics_listen;
    let certs = match &tls {
        Some(t) => Some(Arc::new(CertResolver::new(
            CertPair::read(t).map_err(|e| RunError::Tls(e.to_string()))?,
        ))),
        None => None,
    };
    let app = Arc::new(App::new(config, Arc::new(SystemClock))?);
    spawn_background(
        app.clone(),
        Reloader::new(app.clone(), sources, certs.clone()),
    )?;

    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service(
        &server.configuration,
        crate::proxy::SsoProxy::new(app.clone()),
    );
    match &certs {
        Some(certs) => {
            let settings = certs.settings().map_err(|e| RunError::Tls(e.to_string()))?;
            service.add_tls_with_settings(&listen, None, settings);
        }
        None => service.add_tcp(&listen),
    }
    server.add_service(service);
    if let Some(addr) = metrics_listen {
        let app = pingora::apps::http_app::HttpServer::new_app(MetricsService(app.clone()));
        let mut metrics_service =
            pingora::services::listening::Service::new("metrics".to_owned(), app);
        metrics_service.add_tcp(&addr.to_string());
        server.add_service(metrics_service);
    }
    tracing::info!(%listen, tls = tls.is_some(), "sso-proxy listening");
    server.run_forever()
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    #[error("could not start the background runtime: {0}")]
    Runtime(String),
}

/// A small runtime of its own for discovery, reloads and other background work, alive for the
/// life of the process (connections it pooled stay usable).
fn spawn_background(app: Arc<App>, reloader: Reloader) -> Result<(), RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Runtime(e.to_string()))?;
    // Registered before the server starts, so a SIGHUP never meets the default (exit).
    let hangup = {
        let _rt = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| RunError::Runtime(e.to_string()))?
    };
    let terminate = {
        let _rt = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| RunError::Runtime(e.to_string()))?
    };
    std::thread::Builder::new()
        .name("sso-background".into())
        .spawn(move || {
            rt.block_on(async move {
                // A shared session store's connection lives on this runtime.
                app.sessions.start().await;
                tokio::spawn(crate::providers::saml::metadata_refresh(app.clone()));
                tokio::spawn(app.clone().check_bridge_until_ready());
                let every = app.config.oidc_refresh_interval;
                tokio::spawn(crate::providers::key_refresh::run(app.clone(), every));
                tokio::spawn(crate::reload::watch(Arc::new(reloader), hangup));
                let in_flight = app.in_flight.clone();
                tokio::spawn(crate::shutdown::exit_when_drained(in_flight, terminate));
                app.discover_until_ready().await;
                std::future::pending::<()>().await;
            })
        })
        .map_err(|e| RunError::Runtime(e.to_string()))?;
    Ok(())
}
