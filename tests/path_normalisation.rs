//! Path normalisation (DESIGN 4 "Paths"): one normalised path is matched and forwarded; tricky
//! encodings get 400. Requests are sent byte-exact with the raw client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::json;
use support::raw;
use support::stack::{Stack, StackOptions};

async fn stack() -> Stack {
    Stack::start(StackOptions::bad(), |c| {
        c["skip_auth"] = json!(["^/public/"]);
        c["api_routes"] = json!(["^/api/"]);
    })
    .await
}

/// The logged-in browser's cookie header.
async fn session(stack: &Stack) -> String {
    let b = stack.browser_bad().await;
    b.cookie_header(&stack.url("/")).unwrap()
}

/// Send `target` with the session; return (status, path seen upstream when forwarded).
async fn forwarded_path(stack: &Stack, cookie: &str, target: &str) -> (u16, Option<String>) {
    let before = stack.echo.request_count();
    let r = raw::get(
        stack.proxy.port,
        target,
        &[("Cookie", cookie), ("Accept", "*/*")],
    )
    .await;
    let path = (stack.echo.request_count() > before).then(|| stack.echo.last().path);
    (r.status, path)
}

#[tokio::test]
async fn dot_segments_and_repeated_slashes_are_resolved_before_forwarding() {
    let stack = stack().await;
    let cookie = session(&stack).await;
    for (sent, expected) in [
        ("/a/../b", "/b"),
        ("/a/./b", "/a/b"),
        ("/a/b/c/../../d", "/a/d"),
        ("/a//b///c", "/a/b/c"),
        ("//x", "/x"),
    ] {
        let (status, path) = forwarded_path(&stack, &cookie, sent).await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(
            path.as_deref(),
            Some(expected),
            "{sent} must reach upstream as {expected}"
        );
    }
}

#[tokio::test]
async fn percent_encoded_unreserved_characters_are_decoded() {
    let stack = stack().await;
    let cookie = session(&stack).await;
    for (sent, expected) in [
        ("/%7Euser/%41%62c", "/~user/Abc"),
        ("/a/%2e%2e/b", "/b"),
        ("/a/%2E/b", "/a/b"),
        ("/x-%5F-y", "/x-_-y"),
    ] {
        let (status, path) = forwarded_path(&stack, &cookie, sent).await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(
            path.as_deref(),
            Some(expected),
            "{sent} must reach upstream as {expected}"
        );
    }
}

#[tokio::test]
async fn dangerous_paths_get_400_and_never_reach_upstream() {
    let stack = stack().await;
    let cookie = session(&stack).await;
    let mut wrong = Vec::new();
    for sent in [
        "/a%2Fb",
        "/a%2fb",
        "/a%5Cb",
        "/a%5cb",
        "/a\\b",
        "/a%00b",
        "/a%252Fb",
        "/%25",
        "/a%01b",
        "/a%7Fb",
        "/..",
        "/../etc/passwd",
        "/a/../../b",
        "/%2e%2e/x",
        "/a/%2E%2E/%2e%2e/x",
    ] {
        let (status, path) = forwarded_path(&stack, &cookie, sent).await;
        if status != 400 || path.is_some() {
            wrong.push(format!("{sent} -> {status} (upstream saw {path:?})"));
        }
    }
    assert!(wrong.is_empty(), "expected 400 for:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn query_string_is_forwarded_untouched() {
    let stack = stack().await;
    let cookie = session(&stack).await;
    let r = raw::get(
        stack.proxy.port,
        "/q?a=%2F&b=..%2F..&c=%00",
        &[("Cookie", &cookie), ("Accept", "*/*")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = stack.echo.last();
    assert_eq!(seen.path, "/q");
    assert_eq!(seen.query.as_deref(), Some("a=%2F&b=..%2F..&c=%00"));
}

#[tokio::test]
async fn semicolon_has_no_special_meaning() {
    let stack = stack().await;
    let cookie = session(&stack).await;
    let (status, path) = forwarded_path(&stack, &cookie, "/a;jsessionid=1/b").await;
    assert_eq!(status, 200);
    assert_eq!(path.as_deref(), Some("/a;jsessionid=1/b"));
}

#[tokio::test]
async fn skip_auth_matches_the_normalised_path() {
    let stack = stack().await;
    for escape in [
        "/public/../private",
        "/public/%2e%2e/private",
        "/public/./../private",
    ] {
        let r = raw::get(stack.proxy.port, escape, &[("Accept", "*/*")]).await;
        assert_eq!(
            r.status, 401,
            "{escape} leaves the skip_auth prefix: {}",
            r.body
        );
    }
    assert_eq!(stack.echo.request_count(), 0);
    for (sent, expected) in [
        ("/private/../public/ok", "/public/ok"),
        ("//public//x", "/public/x"),
    ] {
        let r = raw::get(stack.proxy.port, sent, &[("Accept", "*/*")]).await;
        assert_eq!(
            r.status, 200,
            "{sent} is a skip_auth path once normalised: {}",
            r.body
        );
        assert_eq!(stack.echo.last().path, expected);
    }
}

#[tokio::test]
async fn api_routes_match_the_normalised_path() {
    let stack = stack().await;
    let nav = [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")];
    for sent in ["/x/../api/v1", "//api/v1", "/%61pi/v1"] {
        let r = raw::get(stack.proxy.port, sent, &nav).await;
        assert_eq!(
            r.status, 401,
            "{sent} is an api_route once normalised: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn own_endpoints_match_the_normalised_path() {
    let stack = stack().await;
    let r = raw::get(
        stack.proxy.port,
        "/foo/../_sso/healthz",
        &[("Accept", "*/*")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = raw::get(stack.proxy.port, "//_sso//userinfo", &[("Accept", "*/*")]).await;
    assert_eq!(r.status, 401, "userinfo without session: {}", r.body);
    assert_eq!(
        stack.echo.request_count(),
        0,
        "own endpoints never go upstream"
    );
}
