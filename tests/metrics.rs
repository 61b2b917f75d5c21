//! The Prometheus listener (`metrics.listen`): requests by decision and status, the upstream
//! latency histogram, logins (attempts, results, failure reasons), sessions held, JWKS fetches
//! and state-database errors, each checked by exact deltas between two scrapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::bad_op::Mode;
use support::browser::Browser;
use support::stack::{Stack, StackOptions, BAD};
use support::util::free_port;

/// One scrape: series (name with labels, as written) → value.
#[derive(Debug, Clone, Default)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    async fn take(url: &str) -> Self {
        let resp = reqwest::get(url).await.unwrap();
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        Self::parse(&resp.text().await.unwrap())
    }

    fn parse(text: &str) -> Self {
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (name, value) = l.rsplit_once(' ').expect("`series value`");
                let value = value.parse().unwrap_or_else(|_| panic!("bad value: {l}"));
                (name.to_owned(), value)
            })
            .collect();
        Scrape(series)
    }

    /// The value of a series; 0 when absent (a labelled counter not yet seen).
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    fn has(&self, series: &str) -> bool {
        self.0.contains_key(series)
    }

    /// Sum of every series of `name` whose labels contain `label`.
    fn sum(&self, name: &str, label: &str) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{name}{{")) && k.contains(label))
            .map(|(_, v)| v)
            .sum()
    }
}

/// Scrape until every `(series, expected delta from before)` holds, or panic after 5 s with
/// what differs. (The request counters move in pingora's logging hook, which may run a moment
/// after the client has its response.)
async fn expect_deltas(url: &str, before: &Scrape, expected: &[(&str, f64)]) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = Scrape::take(url).await;
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(s, d)| now.get(s) - before.get(s) != *d)
            .map(|(s, d)| format!("{s}: expected +{d}, got +{}", now.get(s) - before.get(s)))
            .collect();
        if wrong.is_empty() {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "metrics did not move as expected:\n  {}\nscrape: {now:#?}",
            wrong.join("\n  ")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn requests(decision: &str, status: u16) -> String {
    format!("sso_proxy_requests_total{{decision=\"{decision}\",status=\"{status}\"}}")
}

const HISTOGRAM: &str = "sso_proxy_upstream_duration_seconds";

/// Buckets are cumulative (never decrease with `le`), `+Inf` equals `_count`, and `_count`
/// equals the requests forwarded so far.
fn assert_histogram_consistent(scrape: &Scrape) {
    let mut buckets: Vec<(f64, f64)> = scrape
        .0
        .iter()
        .filter_map(|(k, v)| {
            let le = k
                .strip_prefix(&format!("{HISTOGRAM}_bucket{{le=\""))?
                .strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            Some((le, *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() >= 10, "histogram buckets: {buckets:?}");
    for pair in buckets.windows(2) {
        assert!(
            pair[0].1 <= pair[1].1,
            "buckets not cumulative: {buckets:?}"
        );
    }
    let count = scrape.get(&format!("{HISTOGRAM}_count"));
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
    let forwarded = scrape.sum("sso_proxy_requests_total", "decision=\"forwarded\"");
    assert_eq!(count, forwarded, "histogram count vs requests forwarded");
    assert!(scrape.get(&format!("{HISTOGRAM}_sum")) >= 0.0);
}

#[tokio::test]
async fn metrics_count_requests_by_decision_and_status_with_upstream_latency() {
    let metrics_port = free_port();
    let stack = Stack::start(StackOptions::bad(), |config| {
        config["metrics"] = serde_json::json!({ "listen": format!("127.0.0.1:{metrics_port}") });
    })
    .await;
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let browser = stack.browser_bad().await;
    let before = Scrape::take(&url).await;
    assert_histogram_consistent(&before);

    for _ in 0..3 {
        assert_eq!(browser.navigate(&stack.url("/app")).await.status, 200);
    }
    let anonymous = reqwest::get(stack.url("/app")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let bad_path = reqwest::get(stack.url("/a/%2F/b")).await.unwrap();
    assert_eq!(bad_path.status(), 400);
    let navigation = Browser::new().navigate(&stack.url("/app")).await;
    assert_eq!(navigation.status, 302);
    let health = reqwest::get(stack.url("/_sso/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    let after = expect_deltas(
        &url,
        &before,
        &[
            (&requests("forwarded", 200), 3.0),
            (&requests("unauthenticated", 401), 1.0),
            (&requests("bad_path", 400), 1.0),
            (&requests("redirected_to_login", 302), 1.0),
            (&requests("own_endpoint", 200), 1.0),
            (&format!("{HISTOGRAM}_count"), 3.0),
        ],
    )
    .await;
    assert_histogram_consistent(&after);

    let other = reqwest::get(format!("http://127.0.0.1:{metrics_port}/other"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn metrics_count_logins_by_connection_and_reason_sessions_and_jwks_fetches() {
    let metrics_port = free_port();
    let stack = Stack::start(StackOptions::bad(), |config| {
        config["metrics"] = serde_json::json!({ "listen": format!("127.0.0.1:{metrics_port}") });
    })
    .await;
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let attempts = format!("sso_proxy_login_attempts_total{{connection=\"{BAD}\"}}");
    let success = format!("sso_proxy_logins_total{{connection=\"{BAD}\",result=\"success\"}}");
    let failure = format!("sso_proxy_logins_total{{connection=\"{BAD}\",result=\"failure\"}}");
    let reason =
        |r: &str| format!("sso_proxy_login_failures_total{{connection=\"{BAD}\",reason=\"{r}\"}}");
    let jwks_ok = "sso_proxy_jwks_fetches_total{result=\"success\"}";
    let sessions = "sso_proxy_sessions_active";

    let start = Scrape::take(&url).await;
    assert_eq!(start.get(sessions), 0.0);
    assert!(start.has(sessions), "memory store reports the gauge");
    assert_eq!(start.get(jwks_ok), 0.0);

    let browser = Browser::new();
    stack.login_bad(&browser, None).await.expect_success();
    let one = expect_deltas(
        &url,
        &start,
        &[
            (&attempts, 1.0),
            (&success, 1.0),
            (&failure, 0.0),
            (sessions, 1.0),
            (jwks_ok, 1.0),
        ],
    )
    .await;

    // A token signed by another key under the known kid: an ID-token failure, no refetch.
    stack.bad().set_mode(Mode::BadSignature);
    assert!(!stack.login_bad(&Browser::new(), None).await.succeeded());
    let two = expect_deltas(
        &url,
        &one,
        &[
            (&attempts, 1.0),
            (&success, 0.0),
            (&failure, 1.0),
            (&reason("id_token"), 1.0),
            (sessions, 0.0),
            (jwks_ok, 0.0),
        ],
    )
    .await;

    // The IdP answers with an error; then a callback with a state nobody issued.
    stack.bad().set_mode(Mode::IdpError);
    assert!(!stack.login_bad(&Browser::new(), None).await.succeeded());
    let forged = reqwest::get(stack.url("/callback_bad?state=forged&code=x"))
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    // An id that names no connection is counted as `(unknown)`, never under its own name.
    let scan = reqwest::get(stack.url("/callback_nosuchid?state=x&code=y"))
        .await
        .unwrap();
    assert_eq!(scan.status(), 400);
    let three = expect_deltas(
        &url,
        &two,
        &[
            (&attempts, 1.0),
            (&failure, 2.0),
            (&reason("idp_error"), 1.0),
            (&reason("state"), 1.0),
            (
                "sso_proxy_logins_total{connection=\"(unknown)\",result=\"failure\"}",
                1.0,
            ),
        ],
    )
    .await;
    assert!(
        !three.0.keys().any(|k| k.contains("nosuchid")),
        "a scanned id became a label"
    );

    // A second good login: two sessions held.
    stack.bad().set_mode(Mode::Good);
    stack
        .login_bad(&Browser::new(), None)
        .await
        .expect_success();
    expect_deltas(&url, &three, &[(&success, 1.0), (sessions, 1.0)]).await;
    let last = Scrape::take(&url).await;
    assert_eq!(last.get(sessions), 2.0);
    // Four logins started, five callbacks counted: the forged one started nowhere.
    assert_eq!(last.get(&attempts), 4.0);
    assert_eq!(
        last.sum("sso_proxy_logins_total", &format!("connection=\"{BAD}\"")),
        5.0
    );
}

#[tokio::test]
async fn metrics_count_state_database_errors() {
    let metrics_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let stack = Stack::start(StackOptions::bad(), |config| {
        config["metrics"] = serde_json::json!({ "listen": format!("127.0.0.1:{metrics_port}") });
        config["state"] = serde_json::json!({ "path": db.to_str().unwrap() });
    })
    .await;
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let errors = "sso_proxy_store_errors_total{store=\"sqlite\"}";
    stack
        .login_bad(&Browser::new(), None)
        .await
        .expect_success();
    let healthy = Scrape::take(&url).await;
    assert!(healthy.has(errors));
    assert_eq!(
        healthy.get(errors),
        0.0,
        "a working database reports no errors"
    );

    // Break the database under the running proxy: the next login's user lookups fail.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DROP TABLE users").unwrap();
    drop(conn);
    stack
        .login_bad(&Browser::new(), None)
        .await
        .expect_success();
    let broken = Scrape::take(&url).await;
    assert!(
        broken.get(errors) >= 1.0,
        "store errors not counted: {broken:#?}"
    );
}

#[tokio::test]
async fn cookie_store_reports_no_session_gauge() {
    let metrics_port = free_port();
    let stack = Stack::start(StackOptions::bad().store("cookie"), |config| {
        config["metrics"] = serde_json::json!({ "listen": format!("127.0.0.1:{metrics_port}") });
    })
    .await;
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    stack
        .login_bad(&Browser::new(), None)
        .await
        .expect_success();
    let scrape = Scrape::take(&url).await;
    assert_eq!(
        scrape.get(&format!(
            "sso_proxy_logins_total{{connection=\"{BAD}\",result=\"success\"}}"
        )),
        1.0
    );
    assert!(!scrape.has("sso_proxy_sessions_active"), "{scrape:#?}");
}
