//! The Prometheus listener (`metrics.listen`): request outcomes and logins per connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use support::stack::{Stack, StackOptions, BAD};
use support::util::free_port;

#[tokio::test]
async fn metrics_count_requests_and_logins() {
    let metrics_port = free_port();
    let stack = Stack::start(StackOptions::bad(), |config| {
        config["metrics"] = serde_json::json!({ "listen": format!("127.0.0.1:{metrics_port}") });
    })
    .await;
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let browser = stack.browser_bad().await;
    let page = browser.navigate(&stack.url("/app")).await;
    assert_eq!(page.status.as_u16(), 200);
    let anonymous = reqwest::get(stack.url("/app")).await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let text = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |line_start: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{line_start} missing in:\n{text}"))
    };
    assert_eq!(
        value(&format!(
            "sso_proxy_logins_total{{connection=\"{BAD}\",result=\"success\"}}"
        )),
        1
    );
    assert!(value("sso_proxy_requests_total{outcome=\"forwarded\"}") >= 1);
    assert!(value("sso_proxy_requests_total{outcome=\"unauthenticated\"}") >= 1);
    assert!(value("sso_proxy_requests_total{outcome=\"own_endpoint\"}") >= 2);
    let other = reqwest::get(format!("http://127.0.0.1:{metrics_port}/other"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}
