//! OIDC Back-Channel Logout 1.0: `POST /_sso/backchannel_logout/<id>` with a `logout_token`.
//! A valid token (signed by the OP, right `iss`/`aud`, recent `iat`, the logout event, no
//! `nonce`, `sid` or `sub`, unused `jti`) answers 200 and ends the matching sessions; every
//! malformed variant answers 400 and ends nothing. The real OP posts its own logout tokens when
//! the user signs out there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::bad_op::{BadOp, BadUser, Layout, Signer};
use support::browser::{Browser, Page};
use support::html;
use support::oidc_stack::{bad_block, logged_in, real_stack, BadStack};
use support::stack::Stack;
use support::util::{now, wait_for};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

async fn stack_with_sid(store: &'static str) -> Stack {
    let stack = BadStack::new("bad", Layout::default())
        .store(store)
        .start(|bad| bad_block(bad, "custom"), |_| {})
        .await;
    stack.bad().set_sid(true);
    stack
}

/// POST `logout_token` to the back-channel endpoint of connection `id`.
async fn post_logout_token(stack: &Stack, id: &str, token: &str) -> Page {
    let b = Browser::new();
    b.send(
        b.client
            .post(stack.url(&format!("/_sso/backchannel_logout/{id}")))
            .form(&[("logout_token", token)]),
    )
    .await
}

fn sign(bad: &BadOp, claims: &Value) -> String {
    bad.sign_jwt(claims, Signer::Primary, "logout+jwt")
}

// ---- valid tokens ------------------------------------------------------------------------------

async fn valid_sid_token_ends_the_session(store: &'static str) {
    let stack = stack_with_sid(store).await;
    let bad = stack.bad();
    let b = logged_in(&stack, "bad").await;
    let sid = bad.last_sid().unwrap();
    let page = post_logout_token(
        &stack,
        "bad",
        &sign(bad, &bad.logout_token_claims(Some(&sid), None)),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    stack.assert_no_session(&b).await;
    // A navigation is sent to the login again.
    let nav = b.navigate(&stack.url("/app")).await;
    assert_eq!(nav.status, 302);
    assert_eq!(nav.location().unwrap().path(), "/_sso/login");
}

#[tokio::test]
async fn valid_logout_token_with_sid_ends_the_session() {
    valid_sid_token_ends_the_session("memory").await;
}

#[tokio::test]
async fn valid_logout_token_ends_the_session_with_the_cookie_store() {
    valid_sid_token_ends_the_session("cookie").await;
}

#[tokio::test]
async fn logout_token_for_a_sid_leaves_other_sessions_alone() {
    let stack = stack_with_sid("memory").await;
    let bad = stack.bad();
    let first = logged_in(&stack, "bad").await;
    let first_sid = bad.last_sid().unwrap();
    let second = logged_in(&stack, "bad").await;
    let page = post_logout_token(
        &stack,
        "bad",
        &sign(bad, &bad.logout_token_claims(Some(&first_sid), None)),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    stack.assert_no_session(&first).await;
    assert_eq!(stack.assert_logged_in(&second).await["user"], "dave");
}

#[tokio::test]
async fn logout_token_with_only_sub_ends_every_session_of_that_user() {
    let stack = BadStack::new("bad", Layout::default())
        .start(|bad| bad_block(bad, "custom"), |_| {})
        .await;
    let bad = stack.bad();
    let one = logged_in(&stack, "bad").await;
    let two = logged_in(&stack, "bad").await;
    bad.set_user(BadUser {
        sub: "erin".into(),
        email: "erin@example.com".into(),
        ..BadUser::default()
    });
    let erin = logged_in(&stack, "bad").await;
    let page = post_logout_token(
        &stack,
        "bad",
        &sign(bad, &bad.logout_token_claims(None, Some("dave"))),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    stack.assert_no_session(&one).await;
    stack.assert_no_session(&two).await;
    assert_eq!(stack.assert_logged_in(&erin).await["user"], "erin");
}

#[tokio::test]
async fn a_new_login_after_a_back_channel_logout_is_not_ended_by_it() {
    let stack = BadStack::new("bad", Layout::default())
        .start(|bad| bad_block(bad, "custom"), |_| {})
        .await;
    let bad = stack.bad();
    let old = logged_in(&stack, "bad").await;
    let page = post_logout_token(
        &stack,
        "bad",
        &sign(bad, &bad.logout_token_claims(None, Some("dave"))),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    stack.assert_no_session(&old).await;
    // dave signs in again right away: the earlier logout must not end the new session.
    let new = logged_in(&stack, "bad").await;
    assert_eq!(stack.assert_logged_in(&new).await["user"], "dave");
}

#[tokio::test]
async fn logout_token_for_another_connection_ends_nothing_here() {
    let stack = stack_with_sid("memory").await;
    let bad = stack.bad();
    let b = logged_in(&stack, "bad").await;
    let sid = bad.last_sid().unwrap();
    let token = sign(bad, &bad.logout_token_claims(Some(&sid), None));
    let page = post_logout_token(&stack, "no-such-connection", &token).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(page.json()["error"], "invalid_request");
    stack.assert_logged_in(&b).await;
}

// ---- malformed tokens: 400, the session survives -----------------------------------------------

/// Each malformed variant is refused with 400 `invalid_request` and the session stays.
async fn assert_refused(stack: &Stack, b: &Browser, what: &str, token: &str) {
    let page = post_logout_token(stack, "bad", token).await;
    assert_eq!(page.status, 400, "{what}: {}", page.body);
    assert_eq!(page.json()["error"], "invalid_request", "{what}");
    let me = stack.userinfo(b).await;
    assert_eq!(me.status, 200, "{what}: the session survives");
}

#[tokio::test]
async fn malformed_logout_tokens_are_rejected_and_end_nothing() {
    let stack = stack_with_sid("memory").await;
    let bad = stack.bad();
    let b = logged_in(&stack, "bad").await;
    let sid = bad.last_sid().unwrap();
    let good = || bad.logout_token_claims(Some(&sid), Some("dave"));
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut claims = good();
        f(claims.as_object_mut().unwrap());
        sign(bad, &claims)
    };
    let t = now();
    let variants: Vec<(&str, String)> = vec![
        (
            "bad signature",
            bad.sign_jwt(&good(), Signer::Other, "logout+jwt"),
        ),
        (
            "alg none",
            bad.sign_jwt(&good(), Signer::None, "logout+jwt"),
        ),
        (
            "wrong aud",
            with(&|c| drop(c.insert("aud".into(), json!("another-client")))),
        ),
        (
            "wrong iss",
            with(&|c| drop(c.insert("iss".into(), json!("https://evil.example.com")))),
        ),
        ("missing events", with(&|c| drop(c.remove("events")))),
        (
            "events without the logout event",
            with(&|c| drop(c.insert("events".into(), json!({ "http://example.com/other": {} })))),
        ),
        (
            "logout event not an object",
            with(&|c| drop(c.insert("events".into(), json!({ EVENT: "yes" })))),
        ),
        (
            "has nonce",
            with(&|c| drop(c.insert("nonce".into(), json!("n-1")))),
        ),
        (
            "neither sid nor sub",
            with(&|c| {
                c.remove("sid");
                c.remove("sub");
            }),
        ),
        ("missing jti", with(&|c| drop(c.remove("jti")))),
        ("missing iat", with(&|c| drop(c.remove("iat")))),
        (
            "iat too old",
            with(&|c| {
                c.insert("iat".into(), json!(t - 3600));
                c.remove("exp");
            }),
        ),
        (
            "iat in the future",
            with(&|c| drop(c.insert("iat".into(), json!(t + 3600)))),
        ),
        (
            "expired",
            with(&|c| {
                c.insert("iat".into(), json!(t - 300));
                c.insert("exp".into(), json!(t - 200));
            }),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
        ("empty", String::new()),
    ];
    for (what, token) in &variants {
        assert_refused(&stack, &b, what, token).await;
    }
    // Nothing above ended anything: the valid token still works, once.
    let valid = sign(bad, &good());
    let page = post_logout_token(&stack, "bad", &valid).await;
    assert_eq!(page.status, 200, "{}", page.body);
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn replayed_logout_token_is_rejected() {
    let stack = stack_with_sid("memory").await;
    let bad = stack.bad();
    // First use, for a session that is not this browser's: accepted.
    let token = sign(bad, &bad.logout_token_claims(Some("some-other-sid"), None));
    let page = post_logout_token(&stack, "bad", &token).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let b = logged_in(&stack, "bad").await;
    // The same jti again (even for our session's sid it would be a replay).
    let page = post_logout_token(&stack, "bad", &token).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("already used"), "{}", page.body);
    stack.assert_logged_in(&b).await;
}

#[tokio::test]
async fn logout_token_signed_by_an_unknown_key_is_rejected() {
    let stack = stack_with_sid("memory").await;
    let bad = stack.bad();
    let b = logged_in(&stack, "bad").await;
    let sid = bad.last_sid().unwrap();
    // Right claims, a header `kid` the JWKS does not serve.
    let token = sign(bad, &bad.logout_token_claims(Some(&sid), None));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = support::util::b64url(
        json!({ "alg": "RS256", "typ": "logout+jwt", "kid": "not-served" })
            .to_string()
            .as_bytes(),
    );
    assert_refused(&stack, &b, "unknown kid", &parts.join(".")).await;
}

#[tokio::test]
async fn backchannel_endpoint_needs_post_and_a_logout_token() {
    let stack = stack_with_sid("memory").await;
    let b = Browser::new();
    let get = b.api_get(&stack.url("/_sso/backchannel_logout/bad")).await;
    assert_eq!(get.status, 405, "{}", get.body);
    let empty = b
        .send(
            b.client
                .post(stack.url("/_sso/backchannel_logout/bad"))
                .form(&[("other", "x")]),
        )
        .await;
    assert_eq!(empty.status, 400, "{}", empty.body);
    assert_eq!(empty.json()["error"], "invalid_request");
}

// ---- the real OP -------------------------------------------------------------------------------

#[tokio::test]
async fn real_op_sign_out_posts_a_logout_token_that_ends_the_session() {
    let stack = real_stack(&[], true, |_| {}).await;
    let alice = stack.browser_as("alice").await;
    stack.assert_logged_in(&alice).await;
    // Sign out at the OP itself (not through the proxy): its logout page posts a form.
    let op = stack.op();
    let page = alice
        .navigate(&format!("{}/session/end?client_id=proxy-client", op.issuer))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let form = html::forms(&page.body)
        .into_iter()
        .find(|f| f.has_input("xsrf"))
        .unwrap_or_else(|| panic!("a logout form: {}", page.body));
    let action = page.url.join(form.action.as_deref().unwrap_or("")).unwrap();
    let posted = alice
        .send(
            alice
                .nav(reqwest::Method::POST, action.as_str())
                .header("origin", op.issuer.as_str())
                .form(&form.inputs),
        )
        .await;
    assert!(
        posted.status.is_redirection() || posted.status.is_success(),
        "{} {}",
        posted.status,
        posted.body
    );
    wait_for(
        "the OP's back-channel logout",
        Duration::from_secs(5),
        || async {
            op.events()
                .iter()
                .find(|e| e.starts_with("backchannel."))
                .cloned()
        },
    )
    .await;
    let events = op.events();
    assert!(
        events.contains(&"backchannel.success proxy-client".to_owned()),
        "{events:?}"
    );
    stack.assert_no_session(&alice).await;
}
