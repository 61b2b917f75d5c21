//! PKCE modes (`code_challenge`, `code_challenge_method`): S256 by default, `plain` and `none`
//! when configured. oidc-provider 9 implements only S256, so `plain` runs against the BadOp,
//! which verifies both methods.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::json;
use support::browser::Browser;
use support::stack::{Stack, StackOptions, BAD, LOCAL};

#[tokio::test]
async fn default_login_sends_s256_state_nonce_and_verifier() {
    let stack = Stack::with_bad_op().await;
    stack.browser_bad().await;
    let bad = stack.bad();
    assert_eq!(
        bad.last_authorize_param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        bad.last_authorize_param("code_challenge").map(|c| c.len()),
        Some(43)
    );
    assert!(bad
        .last_authorize_param("state")
        .is_some_and(|s| !s.is_empty()));
    assert!(bad
        .last_authorize_param("nonce")
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(
        bad.last_authorize_param("redirect_uri").as_deref(),
        Some(stack.url(&format!("/callback_{BAD}")).as_str())
    );
    let token = bad.last_token_params().unwrap();
    assert!(
        token.iter().any(|(n, _)| n == "code_verifier"),
        "verifier sent: {token:?}"
    );
    assert!(bad.token_errors().is_empty(), "{:?}", bad.token_errors());
    assert_eq!(bad.token_auth_methods(), vec!["client_secret_basic"]);
}

#[tokio::test]
async fn plain_pkce_login_works() {
    let stack = Stack::start(StackOptions::bad(), |c| {
        c["providers"][BAD]["code_challenge_method"] = json!("plain");
    })
    .await;
    stack.browser_bad().await;
    let bad = stack.bad();
    assert_eq!(
        bad.last_authorize_param("code_challenge_method").as_deref(),
        Some("plain")
    );
    let challenge = bad.last_authorize_param("code_challenge").unwrap();
    let token = bad.last_token_params().unwrap();
    assert!(
        token
            .iter()
            .any(|(n, v)| n == "code_verifier" && *v == challenge),
        "plain: verifier equals challenge"
    );
}

#[tokio::test]
async fn code_challenge_false_disables_pkce() {
    let stack = Stack::start(StackOptions::bad(), |c| {
        c["providers"][BAD]["code_challenge"] = json!(false);
    })
    .await;
    stack.browser_bad().await;
    let bad = stack.bad();
    assert!(bad.last_authorize_param("code_challenge").is_none());
    assert!(bad.last_authorize_param("code_challenge_method").is_none());
    let token = bad.last_token_params().unwrap();
    assert!(!token.iter().any(|(n, _)| n == "code_verifier"));
}

#[tokio::test]
async fn pkce_none_login_works_against_the_real_op() {
    let stack = Stack::start(StackOptions::real(), |c| {
        c["providers"][LOCAL]["code_challenge_method"] = json!("none");
    })
    .await;
    let b = Browser::new();
    let r = stack.login_local(&b, "alice", None).await;
    r.expect_success();
    let authorize = r
        .trail
        .iter()
        .find(|s| s.contains("/auth?"))
        .expect("went through the OP's authorization endpoint");
    assert!(
        !authorize.contains("code_challenge"),
        "no PKCE sent: {authorize}"
    );
    assert_eq!(stack.assert_logged_in(&b).await["user"], "alice");
}

#[tokio::test]
async fn s256_login_works_against_the_real_op() {
    let stack = Stack::with_real_op().await;
    let b = Browser::new();
    let r = stack.login_local(&b, "alice", None).await;
    r.expect_success();
    let authorize = r.trail.iter().find(|s| s.contains("/auth?")).unwrap();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
}
