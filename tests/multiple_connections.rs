//! Several connections at once (DESIGN 4 `/_sso/login`): the chooser lists every active one by
//! display name and each works; with exactly one active connection the login goes straight to
//! the IdP, with `state`, `nonce`, PKCE S256 and the exact redirect URI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::json;
use support::browser::Browser;
use support::stack::{oidc_provider, Stack, StackOptions, BAD, LOCAL, LOCAL_CLIENT_ID};

fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn chooser_lists_every_active_connection() {
    let stack = Stack::start(StackOptions::both(), |c| {
        c["providers"][BAD]["display_name"] = json!("Bad <OP> & Co");
        let mut dormant = oidc_provider(
            "Dormant IdP",
            "http://127.0.0.1:9",
            "dormant",
            "dormant-secret-0123456789",
        );
        dormant["active"] = json!(false);
        c["providers"]["dormant"] = dormant;
    })
    .await;
    let b = Browser::new();
    let page = b.navigate(&stack.url("/_sso/login?rd=%2Fafter")).await;
    assert_eq!(page.status, 200, "chooser page: {}", page.body);
    assert!(page
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/html"));
    assert!(page.body.contains("Local OP"), "{}", page.body);
    assert!(
        page.body.contains("Bad &lt;OP&gt; &amp; Co"),
        "display names are escaped: {}",
        page.body
    );
    assert!(!page.body.contains("Bad <OP>"), "never raw: {}", page.body);
    assert!(
        !page.body.contains("Dormant IdP"),
        "inactive connections are not listed"
    );
    // Self-contained: no scripts, stylesheets, images or other resources from anywhere.
    let lower = page.body.to_ascii_lowercase();
    for asset in [
        "<script", "<link", "src=", "url(", "@import", "http://", "https://",
    ] {
        assert!(
            !lower.contains(asset),
            "the chooser page loads nothing external ({asset}): {}",
            page.body
        );
    }
    for id in [LOCAL, BAD] {
        assert!(
            page.body.contains(&format!("provider={id}")) && page.body.contains("rd=%2Fafter"),
            "each button starts that connection's login with rd: {}",
            page.body
        );
    }
}

#[tokio::test]
async fn login_through_each_connection_works() {
    let stack = Stack::start(StackOptions::both(), |_| {}).await;

    let alice = Browser::new();
    stack
        .login_local(&alice, "alice", None)
        .await
        .expect_success();
    let info = stack.assert_logged_in(&alice).await;
    assert_eq!(info["provider"], LOCAL);
    assert_eq!(info["user"], "alice");

    let dave = Browser::new();
    stack.login_bad(&dave, None).await.expect_success();
    let info = stack.assert_logged_in(&dave).await;
    assert_eq!(info["provider"], BAD);
    assert_eq!(info["user"], "dave");
    assert_eq!(info["admin"], false);

    assert_eq!(dave.navigate(&stack.url("/x")).await.status, 200);
    assert_eq!(
        stack.echo.last_to("/x").unwrap().header("x-forwarded-user"),
        Some("dave")
    );
}

#[tokio::test]
async fn single_active_connection_goes_straight_to_the_idp() {
    let stack = Stack::start(StackOptions::real(), |c| {
        let mut dormant = oidc_provider(
            "Dormant IdP",
            "http://127.0.0.1:9",
            "dormant",
            "dormant-secret-0123456789",
        );
        dormant["active"] = json!(false);
        c["providers"]["dormant"] = dormant;
    })
    .await;
    let authorize = stack.op().discovery().await["authorization_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Browser::new();
    let page = b.navigate(&stack.url("/_sso/login?rd=%2Fnext")).await;
    assert!(
        page.is_redirect(),
        "straight to the IdP: {} {}",
        page.status,
        page.body
    );
    let location = page.location().unwrap();
    assert!(
        location.as_str().starts_with(&format!("{authorize}?")),
        "{location}"
    );
    assert_eq!(
        query(&location, "client_id").as_deref(),
        Some(LOCAL_CLIENT_ID)
    );
    assert_eq!(query(&location, "response_type").as_deref(), Some("code"));
    assert_eq!(
        query(&location, "redirect_uri").as_deref(),
        Some(stack.url(&format!("/callback_{LOCAL}")).as_str()),
        "exact redirect URI built from public_url"
    );
    let scope = query(&location, "scope").unwrap_or_default();
    for s in ["openid", "profile", "email"] {
        assert!(scope.split(' ').any(|x| x == s), "scope {s} in {scope}");
    }
    assert!(
        query(&location, "state").is_some_and(|s| s.len() >= 16),
        "state: {location}"
    );
    assert!(
        query(&location, "nonce").is_some_and(|s| s.len() >= 16),
        "nonce: {location}"
    );
    assert_eq!(
        query(&location, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query(&location, "code_challenge").map(|c| c.len()),
        Some(43)
    );

    // Two logins never share state or nonce.
    let again = b
        .navigate(&stack.url("/_sso/login"))
        .await
        .location()
        .unwrap();
    assert_ne!(query(&again, "state"), query(&location, "state"));
    assert_ne!(query(&again, "nonce"), query(&location, "nonce"));
}

#[tokio::test]
async fn single_connection_login_goes_to_the_idp_even_with_a_session() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("alice").await;
    let page = b.navigate(&stack.url("/_sso/login")).await;
    let location = page.location().expect("redirect");
    assert!(
        location.as_str().starts_with(&stack.op().issuer),
        "{location}"
    );
}
