//! Open-redirect attempts in `rd` (DESIGN 6 "Redirect targets"): after the login the browser is
//! sent to a same-origin path or an `allowed_redirect_hosts` URL, anything else falls back to `/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::json;
use support::browser::Browser;
use support::stack::{Stack, StackOptions, BAD};

/// Log in with `rd` in a fresh browser and return the post-login Location, resolved.
async fn landing(stack: &Stack, rd: &str) -> String {
    let b = Browser::new();
    let r = stack.login_bad(&b, Some(rd)).await;
    r.expect_success().to_string()
}

#[tokio::test]
async fn unsafe_rd_values_land_on_root() {
    let stack = Stack::with_bad_op().await;
    let root = stack.url("/");
    let port = stack.proxy.port;
    let attempts = [
        "//evil.com".to_owned(),
        "///evil.com".to_owned(),
        "/\\evil.com".to_owned(),
        "\\\\evil.com".to_owned(),
        "https://evil.com".to_owned(),
        "http://evil.com/".to_owned(),
        "/%09/evil.com".to_owned(),
        "/\t/evil.com".to_owned(),
        "%2F%2Fevil.com".to_owned(),
        "/%2F/evil.com".to_owned(),
        "/%5Cevil.com".to_owned(),
        "javascript:alert(1)".to_owned(),
        "JavaScript:alert(1)".to_owned(),
        "data:text/html,<script>alert(1)</script>".to_owned(),
        "http:evil.com".to_owned(),
        " //evil.com".to_owned(),
        format!("http://127.0.0.1:{port}@evil.com/"),
        "evil.com".to_owned(),
    ];
    let mut wrong = Vec::new();
    for rd in &attempts {
        let got = landing(&stack, rd).await;
        if got != root {
            wrong.push(format!("rd={rd:?} -> {got}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "expected {root} for:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn safe_rd_values_are_kept() {
    let stack = Stack::with_bad_op().await;
    for rd in ["/", "/deep/path?q=1&r=%2F", "/a/b/"] {
        let expected = url::Url::parse(&stack.url(rd)).unwrap();
        let got = landing(&stack, rd).await;
        assert_eq!(got, expected.as_str(), "rd={rd}");
    }
    // Same origin written absolutely is fine too.
    let absolute = stack.url("/abs?x=1");
    assert_eq!(landing(&stack, &absolute).await, absolute);
}

#[tokio::test]
async fn allowed_redirect_hosts_admit_listed_hosts_only() {
    let stack = Stack::start(StackOptions::bad(), |c| {
        c["allowed_redirect_hosts"] = json!(["allowed.example.com"]);
    })
    .await;
    assert_eq!(
        landing(&stack, "https://allowed.example.com/welcome?x=1").await,
        "https://allowed.example.com/welcome?x=1"
    );
    let root = stack.url("/");
    for rd in [
        "https://allowed.example.com.evil.com/",
        "https://evil.com/?allowed.example.com",
        "https://allowed.example.com@evil.com/",
        "https://evil.com\\@allowed.example.com/",
        "javascript://allowed.example.com/%0Aalert(1)",
    ] {
        assert_eq!(landing(&stack, rd).await, root, "rd={rd}");
    }
}

#[tokio::test]
async fn protected_page_is_reached_after_login_started_from_it() {
    let stack = Stack::with_bad_op().await;
    let b = Browser::new();
    let start = stack.url("/reports/42?view=full");
    let r = b.login_from(stack.base(), &start, "unused", "unused").await;
    let target = r.expect_success();
    assert_eq!(target.as_str(), start);
    let page = b.follow(b.navigate(target.as_str()).await).await;
    assert_eq!(page.status, 200);
    let seen = stack.echo.last_to("/reports/42").unwrap();
    assert_eq!(seen.query.as_deref(), Some("view=full"));
    assert_eq!(seen.header("x-forwarded-user"), Some("dave"));
    assert!(
        r.trail.iter().any(|s| s.contains("/authorize?")),
        "went through the IdP"
    );
    assert!(r.callback_url.unwrap().path() == format!("/callback_{BAD}"));
}
