//! Prometheus metrics (`sso_proxy_*`), served as text on `metrics.listen` (`GET /metrics`):
//! requests by decision and status, upstream latency, logins by connection and result (with
//! the failure reason), configuration reloads. Values other modules own (sessions held, JWKS
//! fetches, state-database errors) are read from them at scrape time ([`Sampled`]).
//!
//! The data path only does relaxed atomic increments on fixed arrays: no lock, no allocation.
//! Logins are rare; their per-connection maps sit behind a mutex.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::app::App;

/// What the proxy did with a request.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Forwarded = 0,
    RedirectedToLogin = 1,
    Unauthenticated = 2,
    OwnEndpoint = 3,
    BadPath = 4,
}

/// `decision` labels, by [`Outcome`] index; the last one is a request that ended before a
/// decision was made.
const DECISIONS: [&str; 6] = [
    "forwarded",
    "redirected_to_login",
    "unauthenticated",
    "own_endpoint",
    "bad_path",
    "undecided",
];
const UNDECIDED: usize = 5;

/// One counter per status code 0..=599 (0: no response was written).
const STATUS_SLOTS: usize = 600;

/// Upper bounds (seconds) of the upstream latency buckets; `+Inf` is implied.
pub const UPSTREAM_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Why a login failed: the `reason` label, derived from the error (`Error::login_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LoginFailure {
    /// The IdP answered with an error (OIDC `error=`, a non-Success SAML status).
    IdpError,
    /// The IdP (discovery, metadata, JWKS, token endpoint) could not be reached or used.
    IdpUnavailable,
    /// No, a used, a foreign or an expired pending login (`state`, RelayState).
    State,
    /// A malformed callback (no code, another connection's login).
    BadRequest,
    /// The token endpoint refused the code.
    Token,
    /// The ID token (or Keycloak access token) failed verification.
    IdToken,
    /// The userinfo answer was unusable.
    Userinfo,
    /// The SAML response failed a check.
    SamlResponse,
    /// The user was verified but not admitted (sign-up rules, email verification, groups).
    Admission,
    /// The ClearML bridge could not provision the user.
    UpstreamProvisioning,
    Other,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::IdpError => "idp_error",
            LoginFailure::IdpUnavailable => "idp_unavailable",
            LoginFailure::State => "state",
            LoginFailure::BadRequest => "bad_request",
            LoginFailure::Token => "token",
            LoginFailure::IdToken => "id_token",
            LoginFailure::Userinfo => "userinfo",
            LoginFailure::SamlResponse => "saml_response",
            LoginFailure::Admission => "admission",
            LoginFailure::UpstreamProvisioning => "upstream_provisioning",
            LoginFailure::Other => "other",
        }
    }
}

/// Values other modules keep, read when `/metrics` is scraped.
#[derive(Debug, Default)]
pub struct Sampled {
    /// Sessions held in memory; `None` for the cookie store (nothing is held).
    pub sessions_active: Option<u64>,
    /// Failed state-database (SQLite) operations.
    pub store_errors: u64,
    /// With a shared session store: failed Redis commands, and whether Redis answers now.
    pub redis: Option<(u64, bool)>,
    /// JWKS fetches by result.
    pub jwks_fetches: Vec<(&'static str, u64)>,
}

/// A latency histogram on atomics: per-bucket counts (made cumulative when rendered) and the
/// sum in microseconds; the count is the sum of the buckets.
struct Histogram {
    buckets: [AtomicU64; UPSTREAM_BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = UPSTREAM_BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(UPSTREAM_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = UPSTREAM_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        // The count is the sum of the buckets, so a scrape never sees them disagree.
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

#[derive(Default)]
struct Logins {
    attempts: BTreeMap<String, u64>,
    results: BTreeMap<(String, &'static str), u64>,
    failures: BTreeMap<(String, LoginFailure), u64>,
}

pub struct Metrics {
    /// `DECISIONS.len() × STATUS_SLOTS` counters: decision-major, status-minor.
    requests: Box<[AtomicU64]>,
    upstream: Histogram,
    logins: Mutex<Logins>,
    /// Configuration reloads: `[applied, refused]`.
    reloads: [AtomicU64; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: (0..DECISIONS.len() * STATUS_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            upstream: Histogram::new(),
            logins: Mutex::new(Logins::default()),
            reloads: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

impl Metrics {
    /// A finished request: its decision (`None`: it ended before one) and response status
    /// (0 when none was written).
    pub fn request(&self, outcome: Option<Outcome>, status: u16) {
        let decision = outcome.map_or(UNDECIDED, |o| o as usize);
        let status = usize::from(status);
        let status = if status < STATUS_SLOTS { status } else { 0 };
        self.requests[decision * STATUS_SLOTS + status].fetch_add(1, Ordering::Relaxed);
    }

    /// Time from choosing the upstream until its response header arrived (or the attempt
    /// failed).
    pub fn upstream(&self, elapsed: Duration) {
        self.upstream.observe(elapsed);
    }

    /// A login started at `connection` (the browser is sent to the IdP).
    pub fn login_started(&self, connection: &str) {
        let mut logins = self.lock_logins();
        *logins.attempts.entry(connection.to_owned()).or_default() += 1;
    }

    /// A login callback that created a session.
    pub fn login_succeeded(&self, connection: &str) {
        let mut logins = self.lock_logins();
        *logins
            .results
            .entry((connection.to_owned(), "success"))
            .or_default() += 1;
    }

    /// A login callback that failed, and why.
    pub fn login_failed(&self, connection: &str, reason: LoginFailure) {
        let mut logins = self.lock_logins();
        *logins
            .results
            .entry((connection.to_owned(), "failure"))
            .or_default() += 1;
        *logins
            .failures
            .entry((connection.to_owned(), reason))
            .or_default() += 1;
    }

    /// A configuration reload, applied or refused.
    pub fn reload(&self, applied: bool) {
        self.reloads[usize::from(!applied)].fetch_add(1, Ordering::Relaxed);
    }

    fn lock_logins(&self) -> std::sync::MutexGuard<'_, Logins> {
        match self.logins.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, sampled: &Sampled) -> String {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "sso_proxy_requests_total",
            "counter",
            "Requests by what the proxy decided and the response status (0: none was written).",
        );
        for (d, decision) in DECISIONS.iter().enumerate() {
            for status in 0..STATUS_SLOTS {
                let n = self.requests[d * STATUS_SLOTS + status].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "sso_proxy_requests_total{{decision=\"{decision}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        header(
            &mut out,
            "sso_proxy_upstream_duration_seconds",
            "histogram",
            "Forwarded requests: time from choosing the upstream to its response header (or failure).",
        );
        self.upstream
            .render(&mut out, "sso_proxy_upstream_duration_seconds");
        self.render_logins(&mut out);
        render_sampled(&mut out, sampled);
        header(
            &mut out,
            "sso_proxy_config_reloads_total",
            "counter",
            "Configuration reloads (SIGHUP or watch_config) by result.",
        );
        for (i, result) in ["applied", "refused"].iter().enumerate() {
            let n = self.reloads[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "sso_proxy_config_reloads_total{{result=\"{result}\"}} {n}"
            );
        }
        out
    }

    fn render_logins(&self, out: &mut String) {
        let logins = self.lock_logins();
        header(
            out,
            "sso_proxy_login_attempts_total",
            "counter",
            "Logins started (browser sent to the IdP) by connection.",
        );
        for (connection, n) in &logins.attempts {
            let c = escape(connection);
            let _ = writeln!(
                out,
                "sso_proxy_login_attempts_total{{connection=\"{c}\"}} {n}"
            );
        }
        header(
            out,
            "sso_proxy_logins_total",
            "counter",
            "Completed login callbacks by connection and result.",
        );
        for ((connection, result), n) in &logins.results {
            let c = escape(connection);
            let _ = writeln!(
                out,
                "sso_proxy_logins_total{{connection=\"{c}\",result=\"{result}\"}} {n}"
            );
        }
        header(
            out,
            "sso_proxy_login_failures_total",
            "counter",
            "Failed login callbacks by connection and reason.",
        );
        for ((connection, reason), n) in &logins.failures {
            let c = escape(connection);
            let r = reason.as_str();
            let _ = writeln!(
                out,
                "sso_proxy_login_failures_total{{connection=\"{c}\",reason=\"{r}\"}} {n}"
            );
        }
    }
}

fn render_sampled(out: &mut String, sampled: &Sampled) {
    if let Some(n) = sampled.sessions_active {
        header(
            out,
            "sso_proxy_sessions_active",
            "gauge",
            "Sessions held by the memory store.",
        );
        let _ = writeln!(out, "sso_proxy_sessions_active {n}");
    }
    header(
        out,
        "sso_proxy_jwks_fetches_total",
        "counter",
        "JWKS documents fetched from identity providers, by result.",
    );
    for (result, n) in &sampled.jwks_fetches {
        let _ = writeln!(
            out,
            "sso_proxy_jwks_fetches_total{{result=\"{result}\"}} {n}"
        );
    }
    header(
        out,
        "sso_proxy_store_errors_total",
        "counter",
        "Failed operations on the state database (SQLite at state.path).",
    );
    let _ = writeln!(
        out,
        "sso_proxy_store_errors_total{{store=\"sqlite\"}} {}",
        sampled.store_errors
    );
    if let Some((errors, up)) = sampled.redis {
        let _ = writeln!(
            out,
            "sso_proxy_store_errors_total{{store=\"redis\"}} {errors}"
        );
        header(
            out,
            "sso_proxy_redis_up",
            "gauge",
            "1 while the shared session store (Redis) answers, else 0.",
        );
        let _ = writeln!(out, "sso_proxy_redis_up {}", u8::from(up));
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Read the values other modules keep. The memory store's pending maintenance runs first, so
/// the session count is current (a scrape is rare; this is not the data path).
fn sample(app: &App) -> Sampled {
    Sampled {
        sessions_active: app.memory_sessions.as_ref().map(|m| {
            m.run_pending_tasks();
            m.entry_count()
        }),
        store_errors: app.users.error_count(),
        redis: app
            .sessions
            .shared()
            .map(|r| (r.error_count(), r.is_healthy())),
        jwks_fetches: app.jwks.fetch_counts().to_vec(),
    }
}

/// The `/metrics` listener.
pub struct MetricsService(pub Arc<App>);

#[async_trait]
impl ServeHttp for MetricsService {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let (status, body, content_type) = if session.req_header().uri.path() == "/metrics" {
            let sampled = sample(&self.0);
            (
                200,
                self.0.metrics.render(&sampled).into_bytes(),
                "text/plain; version=0.0.4",
            )
        } else {
            (404, b"not found\n".to_vec(), "text/plain")
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
        if let Ok(v) = http::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        response
    }
}

#[cfg(test)]
mod tests;
