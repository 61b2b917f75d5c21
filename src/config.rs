//! The validated configuration and `load()`, which merges defaults, the YAML file, the
//! environment (`SSO_PROXY__*` and ClearML's `CLEARML__…`/`TRAINS__…` variables) and CLI flags,
//! then converts the raw values into these types, collecting every problem on the way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use regex::Regex;
use serde_yaml::{Mapping, Value};
use url::Url;

mod clearml;
mod clearml_env;
mod connection;
mod env;
mod file;
mod provider;
mod saml;
#[cfg(test)]
mod tests;
mod validate;

pub use connection::{validate_connection, ValidConnection};
pub use saml::{
    IdpMetadataSource, SamlPreset, SamlProviderConfig, NAMEID_CLAIM as SAML_NAMEID_CLAIM,
};

/// A secret value. `Debug` never shows it; use [`Secret::expose`] where the value is needed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The ClearML bridge (`clearml.*`, DESIGN section 3.3).
#[derive(Debug, Clone)]
pub struct ClearmlConfig {
    pub api_url: Url,
    /// Access key of the system credential: kept out of `Debug` like the secret.
    pub api_key: Secret<String>,
    pub api_secret: Secret<String>,
    pub cookie_name: String,
    /// `Domain` of the ClearML cookie (the Helm chart's `cookieDomain`); `None`: host-only.
    pub cookie_domain: Option<String>,
    pub token_lifetime: Duration,
    /// ClearML company for created users; `None`: read from the proxy's own token.
    pub company: Option<String>,
    pub guest_groups: Vec<String>,
}

/// Everything the proxy runs with, already validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Worker threads of the data path (`threads`, default: the number of CPUs).
    pub threads: usize,
    pub upstream: Url,
    /// PEM bundle trusted for an `https://` upstream, besides the system roots.
    pub upstream_ca_file: Option<PathBuf>,
    /// External origin of the protected app; callback URLs are built from it.
    pub public_url: Url,
    pub tls: Option<TlsConfig>,
    pub session: SessionConfig,
    pub state_path: String,
    pub skip_auth: Vec<RouteRule>,
    pub api_routes: Vec<Regex>,
    pub allowed_redirect_hosts: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub headers: HeadersConfig,
    pub log: LogConfig,
    pub metrics_listen: Option<SocketAddr>,
    /// Reload when the config file (or the TLS certificate/key) changes (`watch_config`).
    pub watch_config: bool,
    /// How often OIDC discovery documents and key sets in use are fetched again
    /// (`oidc_refresh_interval`).
    pub oidc_refresh_interval: Duration,
    pub admin_token: Option<Secret<String>>,
    pub directory: DirectoryConfig,
    /// The ClearML bridge, when `clearml.enabled`.
    pub clearml: Option<ClearmlConfig>,
    /// Identity-provider connections, sorted by id.
    pub providers: Vec<OidcProviderConfig>,
    /// SAML connections (`protocol: saml`), sorted by id.
    pub saml_providers: Vec<SamlProviderConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStoreKind {
    Memory,
    Cookie,
    /// Shared by every replica; [`SessionConfig::redis`] says where.
    Redis,
}

/// `session.store: redis://…` (or `rediss://` for TLS).
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The URL as configured; may carry a password.
    pub url: Secret<String>,
    /// The URL with any password replaced, for logs and `--check-config`.
    pub display: String,
    /// How long a replica serves a session from its own memory before asking Redis again
    /// (`session.local_cache_ttl`); logouts reach the other replicas at once by pub/sub.
    pub local_cache_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub store: SessionStoreKind,
    /// At least 32 raw bytes (after `base64:` decoding).
    pub secret: Secret<Vec<u8>>,
    /// Base name as configured (`sso_session`); the `__Host-` prefix is added by the session
    /// module when `public_url` is https.
    pub cookie_name: String,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    /// Upper bound on sessions held by the memory store (`session.max_entries`, default 1_000_000).
    pub max_entries: u64,
    /// Set when `store` is [`SessionStoreKind::Redis`].
    pub redis: Option<RedisConfig>,
}

/// A `skip_auth` route: `"[METHOD=]regex"`, searched in the normalised path.
#[derive(Debug, Clone)]
pub struct RouteRule {
    pub method: Option<http::Method>,
    pub path: Regex,
}

/// Names of the injected identity headers; `None` disables one.
#[derive(Debug, Clone)]
pub struct HeadersConfig {
    pub user: Option<String>,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    pub groups: Option<String>,
    pub name: Option<String>,
    /// `headers.pass_access_token`: send `X-Forwarded-Access-Token`.
    pub pass_access_token: bool,
    /// `headers.pass_authorization`: send `Authorization: Bearer <id_token>`.
    pub pass_authorization: bool,
    /// `headers.identity_token`: send `X-Sso-Identity`, an ES256 JWT (see `/_sso/jwks.json`).
    pub identity_token: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// One of `error` `warn` `info` `debug` `trace`.
    pub level: String,
}

#[derive(Debug, Clone, Default)]
pub struct DirectoryConfig {
    pub known_users: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Custom,
    Keycloak,
    Auth0,
    Cognito,
    Google,
    MicrosoftAd,
    Azure,
    Okta,
    Ping,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Custom => "custom",
            Preset::Keycloak => "keycloak",
            Preset::Auth0 => "auth0",
            Preset::Cognito => "cognito",
            Preset::Google => "google",
            Preset::MicrosoftAd => "microsoft_ad",
            Preset::Azure => "azure",
            Preset::Okta => "okta",
            Preset::Ping => "ping",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMethod {
    None,
    Plain,
    S256,
}

/// Claim names (dotted paths allowed) read into an `Identity`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimNames {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub picture: String,
    pub preferred_username: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupsConfig {
    pub claim: String,
    pub enabled: bool,
    pub admins: Vec<String>,
    pub case_sensitive: bool,
    pub prohibit_user_signup_if_not_in_group: bool,
}

/// Explicit endpoints; each overrides what discovery found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OidcEndpoints {
    pub authorize_url: Option<Url>,
    pub access_token_url: Option<Url>,
    pub revocation_url: Option<Url>,
    pub userinfo_url: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub end_session_url: Option<Url>,
}

/// One OIDC connection (`providers.<id>` or the ClearML `oauth_client` variables).
#[derive(Debug, Clone, PartialEq)]
pub struct OidcProviderConfig {
    pub id: String,
    pub preset: Preset,
    pub display_name: String,
    pub active: bool,
    /// Where discovery runs: `issuer`, or Keycloak's `base_url`. The expected `iss` is the
    /// discovery document's `issuer` (or this value when discovery is skipped).
    pub issuer: Option<Url>,
    /// `issuer` exactly as written (a `Url` adds `/` to a bare host): the expected `iss` when
    /// the explicit endpoints stand alone and no discovery document is used.
    pub issuer_text: Option<String>,
    pub base_url: Option<Url>,
    pub endpoints: OidcEndpoints,
    pub client_id: String,
    pub client_secret: Option<Secret<String>>,
    pub code_challenge_method: PkceMethod,
    /// `scopes` followed by `additional_scopes`, deduplicated, `openid` always present.
    pub scopes: Vec<String>,
    pub user_info_from_id_token: bool,
    pub get_info_from_access_token: bool,
    pub email_verification: bool,
    pub create_new_users: bool,
    pub verify_token_signature: bool,
    pub claims: ClaimNames,
    pub groups: GroupsConfig,
    pub admin_role: Option<String>,
    pub idp_logout: bool,
    pub default_company: Option<String>,
    pub hosted_domain: Vec<String>,
    pub graph_url: Option<Url>,
    pub debug: bool,
    pub clock_skew: Duration,
    /// ID-token signature algorithms accepted (`id_token_signing_algs`), default RS256, PS256, ES256.
    pub allowed_algs: Vec<jsonwebtoken::Algorithm>,
    /// Where the connection came from: `file` or the name of the first environment variable.
    pub source: String,
}

/// Everything `load` reads, passed in so tests never touch the process environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// YAML file from `--config` or `SSO_PROXY_CONFIG`.
    pub file: Option<PathBuf>,
    /// The process environment (or a test's map).
    pub env: BTreeMap<String, String>,
    /// CLI overrides as `(dotted.key, value)` pairs, highest precedence.
    pub cli: Vec<(String, String)>,
}

/// One configuration problem, naming the key or variable it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found while loading; never empty.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration ({} problem(s))", .0.len())]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl Sources {
    /// Reads the real process environment; the only place `load`'s inputs touch it.
    pub fn from_process(file: Option<PathBuf>, cli: Vec<(String, String)>) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Sources { file, env, cli }
    }
}

/// Merges defaults < YAML file < environment (`TRAINS__` < `CLEARML__` < `SSO_PROXY__`) < CLI,
/// then validates. On failure, returns every problem found, each naming its key or variable.
pub fn load(sources: &Sources) -> Result<Config, ConfigErrors> {
    let mut problems = Vec::new();
    let mut tree = env::Tree::default();
    if let Some(path) = &sources.file {
        match file::read(path) {
            Ok(root) => tree.set_file(root),
            Err(problem) => problems.push(problem),
        }
    }
    clearml_env::apply(&mut tree, &sources.env, &mut problems);
    env::apply_env(&mut tree, &sources.env, &mut problems);
    env::apply_cli(&mut tree, &sources.cli);
    let raw = file::normalize(&mut tree, &mut problems);
    let mut cx = validate::Ctx::new(&tree);
    let config = validate::convert(raw, &mut cx);
    problems.append(&mut cx.problems);
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ if problems.is_empty() => Err(ConfigErrors(vec![ConfigProblem {
            key: "config".to_owned(),
            message: "incomplete configuration".to_owned(),
        }])),
        _ => Err(ConfigErrors(problems)),
    }
}

const REDACTED: &str = "<redacted>";

/// The effective configuration as YAML, for `--check-config`; every secret shows as `<redacted>`.
pub fn render_redacted(config: &Config) -> String {
    let mut root = Mapping::new();
    put(&mut root, "listen", config.listen.to_string());
    put(&mut root, "threads", config.threads as u64);
    put(&mut root, "upstream", config.upstream.as_str());
    put(
        &mut root,
        "upstream_ca_file",
        opt_path(&config.upstream_ca_file),
    );
    put(&mut root, "public_url", config.public_url.as_str());
    let tls = config.tls.as_ref().map(render_tls);
    put(&mut root, "tls", tls.unwrap_or(Value::Null));
    put(&mut root, "session", render_session(&config.session));
    let mut state = Mapping::new();
    put(&mut state, "path", config.state_path.as_str());
    put(&mut root, "state", state);
    let skip: Vec<String> = config.skip_auth.iter().map(render_rule).collect();
    put(&mut root, "skip_auth", skip);
    let api: Vec<&str> = config.api_routes.iter().map(Regex::as_str).collect();
    put(&mut root, "api_routes", api);
    put(
        &mut root,
        "allowed_redirect_hosts",
        config.allowed_redirect_hosts.clone(),
    );
    let proxies: Vec<String> = config
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    put(&mut root, "trusted_proxies", proxies);
    put(&mut root, "headers", render_headers(&config.headers));
    put(&mut root, "log", render_log(&config.log));
    let mut metrics = Mapping::new();
    let metrics_listen = config.metrics_listen.map(|a| Value::from(a.to_string()));
    put(
        &mut metrics,
        "listen",
        metrics_listen.unwrap_or(Value::Null),
    );
    put(&mut root, "metrics", metrics);
    put(&mut root, "watch_config", config.watch_config);
    let refresh = humantime::format_duration(config.oidc_refresh_interval).to_string();
    put(&mut root, "oidc_refresh_interval", refresh);
    let mut admin = Mapping::new();
    put(&mut admin, "token", redacted(config.admin_token.is_some()));
    put(&mut root, "admin", admin);
    let mut directory = Mapping::new();
    put(
        &mut directory,
        "known_users",
        config.directory.known_users.clone(),
    );
    put(&mut directory, "groups", config.directory.groups.clone());
    put(&mut root, "directory", directory);
    let mut providers = Mapping::new();
    for provider in &config.providers {
        put(&mut providers, &provider.id, render_provider(provider));
    }
    for provider in &config.saml_providers {
        put(&mut providers, &provider.id, saml::render(provider));
    }
    put(&mut root, "providers", providers);
    let mut clearml = Mapping::new();
    put(&mut clearml, "enabled", config.clearml.is_some());
    if let Some(c) = &config.clearml {
        put(&mut clearml, "api_url", c.api_url.as_str());
        put(&mut clearml, "api_key", REDACTED);
        put(&mut clearml, "api_secret", REDACTED);
        put(&mut clearml, "cookie_name", c.cookie_name.as_str());
        put(
            &mut clearml,
            "cookie_domain",
            c.cookie_domain.clone().map_or(Value::Null, Value::from),
        );
        put(
            &mut clearml,
            "token_lifetime",
            humantime::format_duration(c.token_lifetime).to_string(),
        );
        put(
            &mut clearml,
            "company",
            c.company.clone().map_or(Value::Null, Value::from),
        );
        put(&mut clearml, "guest_groups", c.guest_groups.clone());
    }
    put(&mut root, "clearml", clearml);
    serde_yaml::to_string(&Value::Mapping(root))
        .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
}

fn put(map: &mut Mapping, key: &str, value: impl Into<Value>) {
    map.insert(Value::from(key), value.into());
}

fn redacted(present: bool) -> Value {
    if present {
        Value::from(REDACTED)
    } else {
        Value::Null
    }
}

fn opt_path(path: &Option<PathBuf>) -> Value {
    path.as_ref()
        .map_or(Value::Null, |p| Value::from(p.display().to_string()))
}

fn opt_url(url: &Option<Url>) -> Value {
    url.as_ref()
        .map_or(Value::Null, |u| Value::from(u.as_str()))
}

fn opt_str(text: &Option<String>) -> Value {
    text.as_deref().map_or(Value::Null, Value::from)
}

fn render_rule(rule: &RouteRule) -> String {
    match &rule.method {
        Some(method) => format!("{method}={}", rule.path.as_str()),
        None => rule.path.as_str().to_owned(),
    }
}

fn render_tls(tls: &TlsConfig) -> Value {
    let mut m = Mapping::new();
    put(&mut m, "cert_file", tls.cert_file.display().to_string());
    put(&mut m, "key_file", tls.key_file.display().to_string());
    Value::Mapping(m)
}

fn render_log(log: &LogConfig) -> Mapping {
    let mut m = Mapping::new();
    let format = match log.format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    put(&mut m, "format", format);
    put(&mut m, "level", log.level.as_str());
    m
}

fn render_session(session: &SessionConfig) -> Mapping {
    let mut m = Mapping::new();
    let store = match session.store {
        SessionStoreKind::Memory => "memory",
        SessionStoreKind::Cookie => "cookie",
        SessionStoreKind::Redis => session
            .redis
            .as_ref()
            .map_or("redis", |r| r.display.as_str()),
    };
    put(&mut m, "store", store);
    put(&mut m, "secret", REDACTED);
    put(&mut m, "cookie_name", session.cookie_name.as_str());
    let idle = humantime::format_duration(session.idle_timeout).to_string();
    put(&mut m, "idle_timeout", idle);
    let max = humantime::format_duration(session.max_lifetime).to_string();
    put(&mut m, "max_lifetime", max);
    put(&mut m, "max_entries", session.max_entries);
    if let Some(redis) = &session.redis {
        let ttl = humantime::format_duration(redis.local_cache_ttl).to_string();
        put(&mut m, "local_cache_ttl", ttl);
    }
    m
}

fn render_headers(headers: &HeadersConfig) -> Mapping {
    let name = |n: &Option<String>| n.as_deref().map_or(Value::Bool(false), Value::from);
    let mut m = Mapping::new();
    put(&mut m, "user", name(&headers.user));
    put(&mut m, "email", name(&headers.email));
    put(
        &mut m,
        "preferred_username",
        name(&headers.preferred_username),
    );
    put(&mut m, "groups", name(&headers.groups));
    put(&mut m, "name", name(&headers.name));
    put(&mut m, "pass_access_token", headers.pass_access_token);
    put(&mut m, "pass_authorization", headers.pass_authorization);
    put(&mut m, "identity_token", headers.identity_token);
    m
}

fn render_provider(p: &OidcProviderConfig) -> Mapping {
    let mut m = Mapping::new();
    put(&mut m, "protocol", "oidc");
    put(&mut m, "provider", p.preset.as_str());
    put(&mut m, "display_name", p.display_name.as_str());
    put(&mut m, "active", p.active);
    put(&mut m, "source", p.source.as_str());
    put(&mut m, "base_url", opt_url(&p.base_url));
    put(&mut m, "issuer", opt_url(&p.issuer));
    render_endpoints(&mut m, &p.endpoints);
    put(&mut m, "client_id", p.client_id.as_str());
    put(&mut m, "client_secret", redacted(p.client_secret.is_some()));
    let pkce = match p.code_challenge_method {
        PkceMethod::None => "none",
        PkceMethod::Plain => "plain",
        PkceMethod::S256 => "S256",
    };
    put(&mut m, "code_challenge_method", pkce);
    put(&mut m, "scopes", p.scopes.clone());
    put(&mut m, "user_info_from_id_token", p.user_info_from_id_token);
    put(
        &mut m,
        "get_info_from_access_token",
        p.get_info_from_access_token,
    );
    put(&mut m, "email_verification", p.email_verification);
    put(&mut m, "create_new_users", p.create_new_users);
    put(&mut m, "verify_token_signature", p.verify_token_signature);
    put(&mut m, "claims", render_claims(&p.claims));
    put(&mut m, "groups", render_groups(&p.groups));
    put(&mut m, "admin_role", opt_str(&p.admin_role));
    put(&mut m, "idp_logout", p.idp_logout);
    put(&mut m, "default_company", opt_str(&p.default_company));
    put(&mut m, "hosted_domain", p.hosted_domain.clone());
    put(&mut m, "graph_url", opt_url(&p.graph_url));
    put(&mut m, "debug", p.debug);
    put(
        &mut m,
        "clock_skew",
        humantime::format_duration(p.clock_skew).to_string(),
    );
    let algs: Vec<String> = p.allowed_algs.iter().map(|a| format!("{a:?}")).collect();
    put(&mut m, "id_token_signing_algs", algs);
    m
}

fn render_endpoints(m: &mut Mapping, e: &OidcEndpoints) {
    put(m, "authorize_url", opt_url(&e.authorize_url));
    put(m, "access_token_url", opt_url(&e.access_token_url));
    put(m, "revocation_url", opt_url(&e.revocation_url));
    put(m, "userinfo_url", opt_url(&e.userinfo_url));
    put(m, "jwks_uri", opt_url(&e.jwks_uri));
    put(m, "end_session_url", opt_url(&e.end_session_url));
}

fn render_claims(c: &ClaimNames) -> Mapping {
    let mut m = Mapping::new();
    put(&mut m, "user_id", c.user_id.as_str());
    put(&mut m, "email", c.email.as_str());
    put(&mut m, "name", c.name.as_str());
    put(&mut m, "given_name", c.given_name.as_str());
    put(&mut m, "family_name", c.family_name.as_str());
    put(&mut m, "picture", c.picture.as_str());
    put(&mut m, "preferred_username", c.preferred_username.as_str());
    m
}

fn render_groups(g: &GroupsConfig) -> Mapping {
    let mut m = Mapping::new();
    put(&mut m, "claim", g.claim.as_str());
    put(&mut m, "enabled", g.enabled);
    put(&mut m, "admins", g.admins.clone());
    put(&mut m, "case_sensitive", g.case_sensitive);
    let prohibit = g.prohibit_user_signup_if_not_in_group;
    put(&mut m, "prohibit_user_signup_if_not_in_group", prohibit);
    m
}

/// Every accepted configuration key as a dotted path; `providers.<id>.…` for connection keys.
pub fn reference_keys() -> Vec<String> {
    file::reference_keys()
}
