//! Rendering of the counters, the histogram and the sampled values.

use super::*;

fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

#[test]
fn requests_count_by_decision_and_status() {
    let m = Metrics::default();
    m.request(Some(Outcome::Forwarded), 200);
    m.request(Some(Outcome::Forwarded), 200);
    m.request(Some(Outcome::Forwarded), 502);
    m.request(Some(Outcome::BadPath), 400);
    m.request(None, 0);
    m.request(Some(Outcome::OwnEndpoint), 999);
    let text = m.render(&Sampled::default());
    let v = |s: &str| value(&text, s);
    assert_eq!(
        v("sso_proxy_requests_total{decision=\"forwarded\",status=\"200\"}").as_deref(),
        Some("2"),
        "{text}"
    );
    assert_eq!(
        v("sso_proxy_requests_total{decision=\"forwarded\",status=\"502\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        v("sso_proxy_requests_total{decision=\"bad_path\",status=\"400\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        v("sso_proxy_requests_total{decision=\"undecided\",status=\"0\"}").as_deref(),
        Some("1")
    );
    // An out-of-range status lands on 0 instead of indexing past the array.
    assert_eq!(
        v("sso_proxy_requests_total{decision=\"own_endpoint\",status=\"0\"}").as_deref(),
        Some("1")
    );
    assert!(!text.contains("decision=\"unauthenticated\""));
}

#[test]
fn histogram_buckets_are_cumulative() {
    let m = Metrics::default();
    m.upstream(Duration::from_millis(3));
    m.upstream(Duration::from_millis(30));
    m.upstream(Duration::from_millis(30));
    m.upstream(Duration::from_secs(100));
    let text = m.render(&Sampled::default());
    let v = |s: &str| value(&text, s).unwrap_or_else(|| panic!("{s} missing:\n{text}"));
    let name = "sso_proxy_upstream_duration_seconds";
    assert_eq!(v(&format!("{name}_bucket{{le=\"0.005\"}}")), "1");
    assert_eq!(v(&format!("{name}_bucket{{le=\"0.025\"}}")), "1");
    assert_eq!(v(&format!("{name}_bucket{{le=\"0.05\"}}")), "3");
    assert_eq!(v(&format!("{name}_bucket{{le=\"30\"}}")), "3");
    assert_eq!(v(&format!("{name}_bucket{{le=\"+Inf\"}}")), "4");
    assert_eq!(v(&format!("{name}_count")), "4");
    let sum: f64 = v(&format!("{name}_sum")).parse().unwrap();
    assert!((sum - 100.063).abs() < 1e-6, "{sum}");
}

#[test]
fn logins_count_attempts_results_and_reasons() {
    let m = Metrics::default();
    m.login_started("kc");
    m.login_started("kc");
    m.login_succeeded("kc");
    m.login_failed("kc", LoginFailure::State);
    m.login_failed("we\"ird", LoginFailure::IdToken);
    let text = m.render(&Sampled {
        sessions_active: Some(3),
        store_errors: 2,
        redis: Some((4, false)),
        jwks_fetches: vec![("success", 5)],
    });
    for line in [
        "sso_proxy_login_attempts_total{connection=\"kc\"} 2",
        "sso_proxy_logins_total{connection=\"kc\",result=\"success\"} 1",
        "sso_proxy_logins_total{connection=\"kc\",result=\"failure\"} 1",
        "sso_proxy_login_failures_total{connection=\"kc\",reason=\"state\"} 1",
        "sso_proxy_login_failures_total{connection=\"we\\\"ird\",reason=\"id_token\"} 1",
        "sso_proxy_sessions_active 3",
        "sso_proxy_store_errors_total{store=\"sqlite\"} 2",
        "sso_proxy_jwks_fetches_total{result=\"success\"} 5",
        "sso_proxy_store_errors_total{store=\"redis\"} 4",
        "sso_proxy_redis_up 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    let cookie_store = m.render(&Sampled::default());
    assert!(!cookie_store.contains("sso_proxy_sessions_active"));
    assert!(
        !cookie_store.contains("redis"),
        "no Redis lines without a Redis store"
    );
}
