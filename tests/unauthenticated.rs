//! Requests without a session (DESIGN 4): browser navigations are sent to the login, everything
//! else gets 401 JSON; `skip_auth` routes pass (stripped of identity headers); `api_routes`
//! always get 401.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use reqwest::Method;
use serde_json::json;
use support::browser::{Browser, Page};
use support::raw;
use support::stack::{Stack, StackOptions};

async fn stack() -> Stack {
    Stack::start(StackOptions::bad(), |c| {
        c["skip_auth"] = json!(["^/public/", "POST=^/hooks/"]);
        c["api_routes"] = json!(["^/api/"]);
    })
    .await
}

fn assert_401_json(page: &Page) {
    assert_eq!(page.status, 401, "{}: {}", page.describe(), page.body);
    let ct = page.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let body = page.json();
    assert_eq!(body["error"], "unauthenticated", "{body}");
    assert!(
        body["login_url"].as_str().is_some_and(|u| !u.is_empty()),
        "login_url: {body}"
    );
}

fn assert_redirect_to_login(stack: &Stack, page: &Page, rd: &str) {
    assert_eq!(page.status, 302, "{}: {}", page.describe(), page.body);
    let location = page.location().expect("Location");
    assert_eq!(
        location.origin(),
        url::Url::parse(stack.base()).unwrap().origin(),
        "login on our origin: {location}"
    );
    assert_eq!(location.path(), "/_sso/login", "{location}");
    let got = location
        .query_pairs()
        .find(|(n, _)| n == "rd")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        got.as_deref(),
        Some(rd),
        "rd keeps path and query: {location}"
    );
}

#[tokio::test]
async fn browser_navigation_redirects_to_login_with_rd() {
    let stack = stack().await;
    let b = Browser::new();
    let page = b.navigate(&stack.url("/private/page?x=1&y=two")).await;
    assert_redirect_to_login(&stack, &page, "/private/page?x=1&y=two");
    assert_eq!(stack.echo.request_count(), 0, "upstream not contacted");
}

#[tokio::test]
async fn accept_html_without_fetch_metadata_counts_as_navigation() {
    let stack = stack().await;
    let b = Browser::new();
    let page = b
        .send(
            b.client
                .get(stack.url("/old-browser"))
                .header("accept", "text/html"),
        )
        .await;
    assert_redirect_to_login(&stack, &page, "/old-browser");
}

#[tokio::test]
async fn head_navigation_redirects_to_login() {
    let stack = stack().await;
    let b = Browser::new();
    let page = b.send(b.nav(Method::HEAD, &stack.url("/head-me"))).await;
    assert_redirect_to_login(&stack, &page, "/head-me");
}

#[tokio::test]
async fn curl_like_request_gets_401_json() {
    let stack = stack().await;
    let b = Browser::new();
    assert_401_json(&b.api_get(&stack.url("/private")).await);
    // No Accept header at all.
    assert_401_json(&b.send(b.client.get(stack.url("/private"))).await);
    assert_eq!(stack.echo.request_count(), 0);
}

#[tokio::test]
async fn xhr_navigation_headers_still_get_401() {
    let stack = stack().await;
    let b = Browser::new();
    let page = b
        .send(
            b.nav(Method::GET, &stack.url("/private"))
                .header("x-requested-with", "XMLHttpRequest"),
        )
        .await;
    assert_401_json(&page);
}

#[tokio::test]
async fn fetch_in_cors_mode_gets_401_even_when_accepting_html() {
    let stack = stack().await;
    let b = Browser::new();
    let page = b
        .send(
            b.client
                .get(stack.url("/private"))
                .header("accept", "text/html")
                .header("sec-fetch-mode", "cors"),
        )
        .await;
    assert_401_json(&page);
}

#[tokio::test]
async fn non_get_navigation_gets_401() {
    let stack = stack().await;
    let b = Browser::new();
    let page = b
        .send(
            b.nav(Method::POST, &stack.url("/private/form"))
                .form(&[("a", "1")]),
        )
        .await;
    assert_401_json(&page);
    assert_eq!(stack.echo.request_count(), 0);
}

#[tokio::test]
async fn api_routes_get_401_even_for_navigation() {
    let stack = stack().await;
    let b = Browser::new();
    assert_401_json(&b.navigate(&stack.url("/api/v1/items")).await);
    assert_eq!(stack.echo.request_count(), 0);
}

#[tokio::test]
async fn skip_auth_route_is_forwarded_without_login_and_stripped() {
    let stack = stack().await;
    let r = raw::get(
        stack.proxy.port,
        "/public/logo.png?v=2",
        &[
            ("Accept", "*/*"),
            ("X-Forwarded-User", "mallory"),
            ("x_forwarded_user", "mallory"),
            ("X-Forwarded-Email", "mallory@evil.example"),
            ("X-Forwarded-Groups", "admins"),
            ("X-Forwarded-Preferred-Username", "root"),
            ("X-Forwarded-Name", "Mallory"),
            ("X-Auth-Request-User", "mallory"),
            ("Remote-User", "mallory"),
            ("X-Sso-Identity", "forged"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = stack.echo.last_to("/public/logo.png").expect("forwarded");
    assert_eq!(seen.query.as_deref(), Some("v=2"));
    let leaked: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| {
            let n = n.replace('_', "-");
            n.starts_with("x-forwarded-user")
                || n.starts_with("x-forwarded-email")
                || n.starts_with("x-forwarded-groups")
                || n.starts_with("x-forwarded-preferred")
                || n.starts_with("x-forwarded-name")
                || n.starts_with("x-auth-request")
                || n == "remote-user"
                || n.starts_with("x-sso-")
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "identity headers on a skip_auth route: {leaked:?}"
    );
}

#[tokio::test]
async fn skip_auth_method_prefix_applies_to_that_method_only() {
    let stack = stack().await;
    let b = Browser::new();
    let post = b
        .send(
            b.client
                .post(stack.url("/hooks/build"))
                .header("accept", "*/*")
                .body("payload"),
        )
        .await;
    assert_eq!(post.status, 200, "POST=^/hooks/ is skipped: {}", post.body);
    assert_eq!(stack.echo.last_to("/hooks/build").unwrap().body, "payload");
    assert_401_json(&b.api_get(&stack.url("/hooks/build")).await);
}

#[tokio::test]
async fn userinfo_and_forward_auth_without_session_are_401() {
    let stack = stack().await;
    let b = Browser::new();
    assert_eq!(stack.userinfo(&b).await.status, 401);
    assert_eq!(b.api_get(&stack.url("/_sso/auth")).await.status, 401);
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn health_endpoints_answer_without_session() {
    let stack = stack().await;
    let b = Browser::new();
    assert_eq!(b.api_get(&stack.url("/_sso/healthz")).await.status, 200);
    assert_eq!(b.api_get(&stack.url("/_sso/readyz")).await.status, 200);
    assert_eq!(stack.echo.request_count(), 0);
}

#[tokio::test]
async fn with_pass_authorization_a_client_authorization_never_reaches_a_skip_auth_route() {
    // The upstream then takes `Authorization: Bearer <id_token>` as identity.
    let stack = Stack::start(StackOptions::bad(), |c| {
        c["skip_auth"] = json!(["^/public/"]);
        c["headers"] = json!({ "pass_authorization": true });
    })
    .await;
    let r = raw::get(
        stack.proxy.port,
        "/public/page",
        &[
            ("Accept", "*/*"),
            ("Authorization", "Bearer forged.id.token"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = stack.echo.last_to("/public/page").expect("forwarded");
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn without_pass_authorization_an_apps_own_authorization_reaches_a_skip_auth_route() {
    let stack = stack().await;
    let r = raw::get(
        stack.proxy.port,
        "/public/api",
        &[("Accept", "*/*"), ("Authorization", "Bearer app-token")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = stack.echo.last_to("/public/api").expect("forwarded");
    assert_eq!(seen.header("authorization"), Some("Bearer app-token"));
}
