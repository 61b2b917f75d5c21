//! Forward-auth (`GET /_sso/auth`, DESIGN 4/5): 202 with `X-Auth-Request-*` for a session, 401
//! without, 403 when `?allowed_groups=` does not match.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use support::browser::{Browser, Page};
use support::stack::Stack;

async fn auth(stack: &Stack, b: &Browser, query: &str) -> Page {
    b.send(
        b.client
            .get(stack.url(&format!("/_sso/auth{query}")))
            .header("accept", "*/*"),
    )
    .await
}

#[tokio::test]
async fn forward_auth_returns_202_with_identity_headers() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("alice").await;
    let page = auth(&stack, &b, "").await;
    assert_eq!(page.status, 202, "{}", page.body);
    assert_eq!(page.header("x-auth-request-user"), Some("alice"));
    assert_eq!(
        page.header("x-auth-request-email"),
        Some("alice@example.com")
    );
    assert_eq!(
        page.header("x-auth-request-preferred-username"),
        Some("alice")
    );
    assert_eq!(page.header("x-auth-request-groups"), Some("admins,ml-team"));
    assert_eq!(page.header("x-auth-request-name"), Some("Alice Liddell"));
    assert_eq!(
        stack.echo.request_count(),
        0,
        "forward-auth never goes upstream"
    );
}

#[tokio::test]
async fn forward_auth_without_session_is_401_even_with_spoofed_headers() {
    let stack = Stack::with_real_op().await;
    let b = Browser::new();
    let page = b
        .send(
            b.client
                .get(stack.url("/_sso/auth"))
                .header("accept", "*/*")
                .header("x-auth-request-user", "mallory")
                .header("x-forwarded-user", "mallory")
                .header("remote-user", "mallory"),
        )
        .await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.header("x-auth-request-user").is_none());
    assert!(b.cookie("http://127.0.0.1/", "sso_session").is_none());
}

#[tokio::test]
async fn forward_auth_is_403_when_no_allowed_group_matches() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("alice").await;
    assert_eq!(auth(&stack, &b, "?allowed_groups=nope").await.status, 403);
    assert_eq!(
        auth(&stack, &b, "?allowed_groups=nope,other").await.status,
        403
    );
}

#[tokio::test]
async fn forward_auth_is_202_when_any_allowed_group_matches() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("alice").await;
    let page = auth(&stack, &b, "?allowed_groups=nope,ml-team").await;
    assert_eq!(page.status, 202, "{}", page.body);
    assert_eq!(page.header("x-auth-request-user"), Some("alice"));
}

#[tokio::test]
async fn forward_auth_applies_groups_per_user() {
    let stack = Stack::with_real_op().await;
    let bob = stack.browser_as("bob").await;
    assert_eq!(
        auth(&stack, &bob, "?allowed_groups=admins").await.status,
        403
    );
    let page = auth(&stack, &bob, "?allowed_groups=ml-team").await;
    assert_eq!(page.status, 202);
    assert_eq!(page.header("x-auth-request-user"), Some("bob"));
    assert_eq!(page.header("x-auth-request-groups"), Some("ml-team"));
}

#[tokio::test]
async fn envoy_ext_authz_path_gets_200_and_the_same_rules() {
    // Envoy's ext_authz HTTP service appends the original path (and query) to `path_prefix`.
    let stack = Stack::with_real_op().await;
    let alice = stack.browser_as("alice").await;
    let page = auth(&stack, &alice, "/app/page").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("x-auth-request-user"), Some("alice"));
    assert_eq!(page.header("x-auth-request-groups"), Some("admins,ml-team"));
    let page = auth(&stack, &alice, "/app?allowed_groups=nobody").await;
    assert_eq!(page.status, 403, "{}", page.body);
    let page = auth(&stack, &Browser::new(), "/app/page").await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.header("x-auth-request-user").is_none());
    assert_eq!(stack.echo.request_count(), 0, "never goes upstream");
}
