//! Raw → validated: converts the raw structs into [`Config`] (URLs, durations, secrets, regexes,
//! addresses), collecting every problem with the key or variable it concerns instead of stopping.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use ipnet::IpNet;
use regex::Regex;
use url::Url;

use super::env::Tree;
use super::file::{self, RawConfig, RawHeaders, RawSession};
use super::{
    provider, Config, ConfigProblem, DirectoryConfig, HeadersConfig, LogConfig, LogFormat,
    RedisConfig, RouteRule, Secret, SessionConfig, SessionStoreKind, TlsConfig,
};

const MIN_SECRET_BYTES: usize = 32;

/// Collects problems, naming each by the variable, flag or dotted key that set it.
pub(crate) struct Ctx<'a> {
    tree: &'a Tree,
    pub(crate) problems: Vec<ConfigProblem>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(tree: &'a Tree) -> Self {
        Ctx {
            tree,
            problems: Vec::new(),
        }
    }

    pub(crate) fn tree(&self) -> &Tree {
        self.tree
    }

    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        let key = self.tree.label(path);
        self.error_at(key, message);
    }

    pub(crate) fn error_at(&mut self, key: String, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key,
            message: message.into(),
        });
    }

    /// An `http(s)://` URL with a host.
    pub(crate) fn url(&mut self, path: &str, value: Option<&str>) -> Option<Url> {
        let text = value?.trim();
        match Url::parse(text) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                self.error(path, format!("`{text}` must be an http:// or https:// URL"));
                None
            }
            Ok(url) if url.host_str().is_none_or(str::is_empty) => {
                self.error(path, format!("`{text}` has no host"));
                None
            }
            Ok(url) => Some(url),
            Err(e) => {
                self.error(path, format!("`{text}` is not a valid URL: {e}"));
                None
            }
        }
    }

    pub(crate) fn duration(
        &mut self,
        path: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Duration {
        let Some(text) = value else { return default };
        if let Ok(seconds) = text.trim().parse::<u64>() {
            return Duration::from_secs(seconds);
        }
        match humantime::parse_duration(text.trim()) {
            Ok(d) => d,
            Err(e) => {
                self.error(
                    path,
                    format!("`{text}` is not a duration like 90s, 30m, 12h, 7d ({e})"),
                );
                default
            }
        }
    }

    /// A secret given as `<key>` or `<key>_file` (read, one trailing newline trimmed).
    pub(crate) fn secret(
        &mut self,
        path: &str,
        value: Option<String>,
        file: Option<String>,
    ) -> Option<String> {
        let file_path = format!("{path}_file");
        match (value, file) {
            (Some(_), Some(_)) => {
                let (a, b) = (self.tree.label(path), self.tree.label(&file_path));
                self.error(path, format!("set either {a} or {b}, not both"));
                None
            }
            (Some(value), None) => Some(value),
            (None, Some(name)) => match std::fs::read_to_string(&name) {
                Ok(text) => Some(trim_one_newline(text)),
                Err(e) => {
                    self.error(&file_path, format!("cannot read `{name}`: {e}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    fn socket_addr(&mut self, path: &str, value: Option<&str>) -> Option<SocketAddr> {
        let text = value?.trim();
        let full = match text.strip_prefix(':') {
            Some(port) => format!("0.0.0.0:{port}"),
            None => text.to_owned(),
        };
        match full.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.error(
                    path,
                    format!("`{text}` is not an address like 0.0.0.0:4180"),
                );
                None
            }
        }
    }

    fn existing_file(&mut self, path: &str, value: Option<String>) -> Option<PathBuf> {
        let name = PathBuf::from(value?);
        if !name.is_file() {
            self.error(path, format!("file `{}` does not exist", name.display()));
        }
        Some(name)
    }
}

fn trim_one_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Converts the normalized raw structs into a [`Config`], or returns every problem found.
pub(crate) fn convert(raw: RawConfig, cx: &mut Ctx) -> Option<Config> {
    let listen = cx.socket_addr("listen", raw.listen.as_deref());
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 4180)));
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = match raw.threads {
        None => cpus,
        Some(n @ 1..=1024) => usize::try_from(n).unwrap_or(cpus),
        Some(n) => {
            cx.error("threads", format!("`{n}` must be between 1 and 1024"));
            cpus
        }
    };
    let upstream = required_url(cx, "upstream", raw.upstream.as_deref());
    let public_url = public_url(cx, raw.public_url.as_deref());
    let upstream_ca_file = cx.existing_file("upstream_ca_file", raw.upstream_ca_file);
    if let Some(ca) = upstream_ca_file.as_deref().filter(|p| p.is_file()) {
        if let Err(e) = crate::tls::check_ca_file(ca) {
            cx.error(e.config_key(), e.reason());
        }
    }
    let tls = tls(cx, raw.tls.unwrap_or_default());
    if let Some(pair) = tls.as_ref() {
        if pair.cert_file.is_file() && pair.key_file.is_file() {
            if let Err(e) = crate::tls::CertPair::read(pair) {
                cx.error(e.config_key(), e.reason());
            }
        }
    }
    let session = session(cx, raw.session.unwrap_or_default());
    let state_path = raw.state.and_then(|s| s.path);
    if state_path.as_deref().is_some_and(|p| p.trim().is_empty()) {
        cx.error(
            "state.path",
            "must not be empty (use `:memory:` to keep nothing)",
        );
    }
    let skip_auth = route_rules(cx, "skip_auth", raw.skip_auth.unwrap_or_default());
    let api_routes = regexes(cx, "api_routes", raw.api_routes.unwrap_or_default());
    let redirect_hosts = redirect_hosts(cx, raw.allowed_redirect_hosts.unwrap_or_default());
    let trusted_proxies = trusted_proxies(cx, raw.trusted_proxies.unwrap_or_default());
    let headers = headers(cx, raw.headers.unwrap_or_default());
    let log = log(cx, raw.log.unwrap_or_default());
    let metrics = raw.metrics.and_then(|m| m.listen);
    let metrics_listen = cx.socket_addr("metrics.listen", metrics.as_deref());
    if metrics_listen == Some(listen) {
        cx.error("metrics.listen", "must differ from listen");
    }
    let admin = raw.admin.unwrap_or_default();
    let admin_token = non_empty_secret(cx, "admin.token", admin.token, admin.token_file);
    let directory = raw.directory.unwrap_or_default();
    let providers = provider::convert_all(cx, raw.providers.unwrap_or_default());
    let saml_providers = super::saml::convert_all(cx, raw.saml_providers, &providers);
    let public_host = public_url.as_ref().and_then(|u| u.host_str());
    let clearml = super::clearml::convert(cx, raw.clearml.unwrap_or_default(), public_host);
    if clearml.is_some() && headers.pass_authorization {
        // The bridge tells API clients by their own Authorization, and ClearML reads its
        // token from it: an ID token there would replace both.
        cx.error(
            "headers.pass_authorization",
            "cannot be used with clearml.enabled (ClearML clients send their own Authorization)",
        );
    }
    let oidc_refresh_interval = oidc_refresh_interval(cx, raw.oidc_refresh_interval.as_deref());
    Some(Config {
        listen,
        threads,
        upstream: upstream?,
        upstream_ca_file,
        public_url: public_url?,
        tls,
        session: session?,
        state_path: state_path.unwrap_or_else(|| "sso-proxy.db".to_owned()),
        skip_auth,
        api_routes,
        allowed_redirect_hosts: redirect_hosts,
        trusted_proxies,
        headers,
        log,
        metrics_listen,
        watch_config: raw.watch_config.unwrap_or(false),
        oidc_refresh_interval,
        admin_token: admin_token.map(Secret::new),
        directory: DirectoryConfig {
            known_users: trimmed(directory.known_users),
            groups: trimmed(directory.groups),
        },
        providers,
        saml_providers,
        clearml,
    })
}

/// `oidc_refresh_interval`: default one hour, at least one second.
fn oidc_refresh_interval(cx: &mut Ctx, value: Option<&str>) -> Duration {
    let key = "oidc_refresh_interval";
    let every = cx.duration(key, value, Duration::from_secs(3600));
    if every < Duration::from_secs(1) {
        cx.error(key, "must be at least 1s");
    }
    every
}

fn trimmed(items: Option<Vec<String>>) -> Vec<String> {
    let items = items.unwrap_or_default().into_iter();
    items
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn required_url(cx: &mut Ctx, path: &str, value: Option<&str>) -> Option<Url> {
    if value.is_none_or(|v| v.trim().is_empty()) {
        cx.error(
            path,
            "required: the URL of the protected app, http:// or https://",
        );
        return None;
    }
    cx.url(path, value)
}

fn public_url(cx: &mut Ctx, value: Option<&str>) -> Option<Url> {
    if value.is_none_or(|v| v.trim().is_empty()) {
        cx.error(
            "public_url",
            "required: the external URL users open, e.g. https://app.example.com",
        );
        return None;
    }
    let url = cx.url("public_url", value)?;
    if url.query().is_some() || url.fragment().is_some() {
        cx.error("public_url", "must not have a query or fragment");
        return None;
    }
    Some(url)
}

fn tls(cx: &mut Ctx, raw: file::RawTls) -> Option<TlsConfig> {
    match (raw.cert_file, raw.key_file) {
        (None, None) => None,
        (Some(_), None) => {
            cx.error("tls.key_file", "required when tls.cert_file is set");
            None
        }
        (None, Some(_)) => {
            cx.error("tls.cert_file", "required when tls.key_file is set");
            None
        }
        (cert, key) => Some(TlsConfig {
            cert_file: cx.existing_file("tls.cert_file", cert)?,
            key_file: cx.existing_file("tls.key_file", key)?,
        }),
    }
}

fn session(cx: &mut Ctx, raw: RawSession) -> Option<SessionConfig> {
    let local_cache_ttl = cx.duration(
        "session.local_cache_ttl",
        raw.local_cache_ttl.as_deref(),
        Duration::from_secs(10),
    );
    let mut redis = None;
    let store = match raw.store.as_deref().map(str::trim) {
        None => SessionStoreKind::Memory,
        Some(s) if s.eq_ignore_ascii_case("memory") => SessionStoreKind::Memory,
        Some(s) if s.eq_ignore_ascii_case("cookie") => SessionStoreKind::Cookie,
        Some(s) if s.starts_with("redis://") || s.starts_with("rediss://") => {
            redis = redis_config(cx, s, local_cache_ttl);
            SessionStoreKind::Redis
        }
        Some(s) if s.starts_with(crate::redis::SentinelUrl::SCHEME) => {
            let check = crate::redis::SentinelUrl::parse(s).map(|_| ());
            redis = nodes_config(cx, s, check, local_cache_ttl);
            SessionStoreKind::Redis
        }
        Some(s) if s.starts_with(crate::redis::ClusterUrl::SCHEME) => {
            let check = crate::redis::ClusterUrl::parse(s).map(|_| ());
            redis = nodes_config(cx, s, check, local_cache_ttl);
            SessionStoreKind::Redis
        }
        Some(s) => {
            let shown = redact_url_password(s);
            cx.error(
                "session.store",
                format!(
                    "`{shown}` is not one of: memory, cookie, redis://host:port[/db], \
                     redis+sentinel://host:port[,host:port]/master[/db], \
                     redis+cluster://host:port[,host:port]"
                ),
            );
            SessionStoreKind::Memory
        }
    };
    let cookie_name = raw.cookie_name.unwrap_or_else(|| "sso_session".to_owned());
    if cookie_name.is_empty() || !cookie_name.bytes().all(is_cookie_name_byte) {
        cx.error(
            "session.cookie_name",
            format!("`{cookie_name}` is not a valid cookie name"),
        );
    }
    let idle_timeout = cx.duration(
        "session.idle_timeout",
        raw.idle_timeout.as_deref(),
        Duration::from_secs(3600),
    );
    let max_lifetime = cx.duration(
        "session.max_lifetime",
        raw.max_lifetime.as_deref(),
        Duration::from_secs(12 * 3600),
    );
    for (path, duration) in [
        ("session.idle_timeout", idle_timeout),
        ("session.max_lifetime", max_lifetime),
    ] {
        if duration.is_zero() {
            cx.error(path, "must be longer than zero");
        }
    }
    let max_entries = raw.max_entries.unwrap_or(1_000_000);
    if max_entries == 0 {
        cx.error("session.max_entries", "must be at least 1");
    }
    let secret = session_secret(cx, raw.secret, raw.secret_file)?;
    Some(SessionConfig {
        store,
        secret: Secret::new(secret),
        cookie_name,
        idle_timeout,
        max_lifetime,
        max_entries,
        redis,
    })
}

/// `redis://[user][:password@]host[:port][/db]`, or `rediss://` for TLS.
fn redis_config(cx: &mut Ctx, text: &str, local_cache_ttl: Duration) -> Option<RedisConfig> {
    let display = redact_url_password(text);
    let url = match Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            cx.error("session.store", format!("`{display}` is not a URL: {e}"));
            return None;
        }
    };
    if url.host_str().is_none_or(str::is_empty) {
        cx.error("session.store", format!("`{display}` names no host"));
        return None;
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u16>().is_err() {
        cx.error(
            "session.store",
            format!("`{display}`: the path must be a database number, like /0"),
        );
        return None;
    }
    if local_cache_ttl.is_zero() {
        cx.error("session.local_cache_ttl", "must be longer than zero");
    }
    Some(RedisConfig {
        url: Secret::new(text.to_owned()),
        display,
        local_cache_ttl,
    })
}

/// `redis+sentinel://…` or `redis+cluster://…`, already parsed into `check`.
fn nodes_config(
    cx: &mut Ctx,
    text: &str,
    check: Result<(), String>,
    local_cache_ttl: Duration,
) -> Option<RedisConfig> {
    let display = redact_url_password(text);
    if let Err(e) = check {
        cx.error("session.store", format!("`{display}`: {e}"));
        return None;
    }
    if local_cache_ttl.is_zero() {
        cx.error("session.local_cache_ttl", "must be longer than zero");
    }
    Some(RedisConfig {
        url: Secret::new(text.to_owned()),
        display,
        local_cache_ttl,
    })
}

/// The URL with its password (if any) replaced by `***`.
fn redact_url_password(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => text.to_owned(),
        // Not a URL: hide anything between `://` and `@`, just in case.
        Err(_) => match (text.find("://"), text.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://***{}", &text[..scheme], &text[at..])
            }
            _ => text.to_owned(),
        },
    }
}

fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn session_secret(cx: &mut Ctx, value: Option<String>, file: Option<String>) -> Option<Vec<u8>> {
    if value.is_none() && file.is_none() {
        let message = "required (or session.secret_file): at least 32 bytes used to seal cookies";
        cx.error("session.secret", message);
        return None;
    }
    let from_file = value.is_none();
    let text = cx.secret("session.secret", value, file)?;
    let path = if from_file {
        "session.secret_file"
    } else {
        "session.secret"
    };
    let bytes = match text.strip_prefix("base64:") {
        Some(encoded) => match decode_base64(encoded) {
            Some(bytes) => bytes,
            None => {
                cx.error(path, "the value after `base64:` is not valid base64");
                return None;
            }
        },
        None => text.into_bytes(),
    };
    if bytes.len() < MIN_SECRET_BYTES {
        let n = bytes.len();
        cx.error(
            path,
            format!("must be at least {MIN_SECRET_BYTES} bytes (got {n})"),
        );
        return None;
    }
    Some(bytes)
}

fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = encoded.trim().trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .ok()
}

pub(crate) fn non_empty_secret(
    cx: &mut Ctx,
    path: &str,
    value: Option<String>,
    file: Option<String>,
) -> Option<String> {
    let secret = cx.secret(path, value, file)?;
    if secret.trim().is_empty() {
        cx.error(path, "must not be empty");
        return None;
    }
    Some(secret)
}

fn list_key(cx: &Ctx, path: &str, index: usize) -> String {
    format!("{}[{index}]", cx.tree().label(path))
}

fn regex(cx: &mut Ctx, key: String, pattern: &str) -> Option<Regex> {
    if pattern.is_empty() {
        cx.error_at(key, "an empty pattern would match every path");
        return None;
    }
    match Regex::new(pattern) {
        Ok(re) => Some(re),
        Err(e) => {
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let reason = reason.trim().trim_start_matches("error: ");
            cx.error_at(key, format!("invalid regex `{pattern}`: {reason}"));
            None
        }
    }
}

fn route_rules(cx: &mut Ctx, path: &str, entries: Vec<String>) -> Vec<RouteRule> {
    let mut rules = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let key = list_key(cx, path, index);
        let (method, pattern) = match entry.split_once('=') {
            Some((m, rest)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                (http::Method::from_bytes(m.as_bytes()).ok(), rest)
            }
            _ => (None, entry.as_str()),
        };
        if let Some(path_re) = regex(cx, key, pattern) {
            rules.push(RouteRule {
                method,
                path: path_re,
            });
        }
    }
    rules
}

fn regexes(cx: &mut Ctx, path: &str, entries: Vec<String>) -> Vec<Regex> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let key = list_key(cx, path, index);
        out.extend(regex(cx, key, entry));
    }
    out
}

fn redirect_hosts(cx: &mut Ctx, entries: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let host = entry.trim().to_ascii_lowercase();
        if host.is_empty()
            || host.contains(['/', '\\', '@', '?', '#'])
            || host.contains(char::is_whitespace)
        {
            let key = list_key(cx, "allowed_redirect_hosts", index);
            cx.error_at(
                key,
                format!("`{entry}` is not a host name (write `host` or `host:port`)"),
            );
        } else {
            out.push(host);
        }
    }
    out
}

fn trusted_proxies(cx: &mut Ctx, entries: Vec<String>) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let text = entry.trim();
        let parsed = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => out.push(net),
            Err(_) => {
                let key = list_key(cx, "trusted_proxies", index);
                cx.error_at(
                    key,
                    format!("`{text}` is not a CIDR (10.0.0.0/8) or an IP address"),
                );
            }
        }
    }
    out
}

fn header(cx: &mut Ctx, path: &str, value: Option<String>, default: &str) -> Option<String> {
    let name = value.unwrap_or_else(|| default.to_owned());
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        cx.error(path, format!("`{name}` is not a valid header name"));
    }
    Some(name.to_owned())
}

fn headers(cx: &mut Ctx, raw: RawHeaders) -> HeadersConfig {
    HeadersConfig {
        user: header(cx, "headers.user", raw.user, "X-Forwarded-User"),
        email: header(cx, "headers.email", raw.email, "X-Forwarded-Email"),
        preferred_username: header(
            cx,
            "headers.preferred_username",
            raw.preferred_username,
            "X-Forwarded-Preferred-Username",
        ),
        groups: header(cx, "headers.groups", raw.groups, "X-Forwarded-Groups"),
        name: header(cx, "headers.name", raw.name, "X-Forwarded-Name"),
        pass_access_token: raw.pass_access_token.unwrap_or(false),
        pass_authorization: raw.pass_authorization.unwrap_or(false),
        identity_token: raw.identity_token.unwrap_or(false),
    }
}

fn log(cx: &mut Ctx, raw: file::RawLog) -> LogConfig {
    let format = match raw.format.as_deref().map(|f| f.trim().to_ascii_lowercase()) {
        None => LogFormat::Text,
        Some(f) if f == "text" => LogFormat::Text,
        Some(f) if f == "json" => LogFormat::Json,
        Some(f) => {
            cx.error("log.format", format!("`{f}` is not one of: text, json"));
            LogFormat::Text
        }
    };
    let level = raw
        .level
        .map_or_else(|| "info".to_owned(), |l| l.trim().to_ascii_lowercase());
    if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
        cx.error(
            "log.level",
            format!("`{level}` is not one of: error, warn, info, debug, trace"),
        );
    }
    LogConfig { format, level }
}
