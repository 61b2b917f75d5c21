//! Prometheus metrics: request outcomes, logins per connection and result, token refreshes.
//! Served as text on `metrics.listen` (`GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

/// What the proxy did with a request.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Forwarded = 0,
    RedirectedToLogin = 1,
    Unauthenticated = 2,
    OwnEndpoint = 3,
    BadPath = 4,
}

const OUTCOMES: [&str; 5] = [
    "forwarded",
    "redirected_to_login",
    "unauthenticated",
    "own_endpoint",
    "bad_path",
];

#[derive(Default)]
pub struct Metrics {
    requests: [AtomicU64; 5],
    /// `(connection, result)` → count; logins are rare, a mutex is fine.
    logins: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
    pub fn request(&self, outcome: Outcome) {
        self.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn login(&self, connection: &str, success: bool) {
        let result = if success { "success" } else { "failure" };
        let mut map = match self.logins.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        *map.entry((connection.to_owned(), result)).or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP sso_proxy_requests_total Requests by what the proxy did with them.\n\
             # TYPE sso_proxy_requests_total counter\n",
        );
        for (name, counter) in OUTCOMES.iter().zip(&self.requests) {
            let _ = writeln!(
                out,
                "sso_proxy_requests_total{{outcome=\"{name}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP sso_proxy_logins_total Completed login callbacks by connection and result.\n\
             # TYPE sso_proxy_logins_total counter\n",
        );
        let map = match self.logins.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        for ((connection, result), n) in map.iter() {
            let _ = writeln!(
                out,
                "sso_proxy_logins_total{{connection=\"{connection}\",result=\"{result}\"}} {n}"
            );
        }
        out
    }
}

/// The `/metrics` listener.
pub struct MetricsService(pub Arc<Metrics>);

#[async_trait]
impl ServeHttp for MetricsService {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let (status, body, content_type) = if session.req_header().uri.path() == "/metrics" {
            (
                200,
                self.0.render().into_bytes(),
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
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.request(Outcome::Forwarded);
        m.request(Outcome::Forwarded);
        m.login("kc", true);
        m.login("kc", false);
        let text = m.render();
        assert!(
            text.contains("sso_proxy_requests_total{outcome=\"forwarded\"} 2"),
            "{text}"
        );
        assert!(text.contains("sso_proxy_requests_total{outcome=\"bad_path\"} 0"));
        assert!(text.contains("sso_proxy_logins_total{connection=\"kc\",result=\"success\"} 1"));
        assert!(text.contains("sso_proxy_logins_total{connection=\"kc\",result=\"failure\"} 1"));
    }
}
