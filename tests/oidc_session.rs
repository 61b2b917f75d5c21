//! Session lifetime: refresh tokens (refresh when the access token is within 60 s of expiry,
//! rotation, single-flight for concurrent requests, `invalid_grant` ends the session, other
//! failures keep it) and token revocation at `revocation_url` on logout. The BadOp covers every
//! case; the real OP (short access tokens, rotating refresh tokens, RFC 7009 revocation) covers
//! the happy paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;
use support::bad_op::{Layout, RefreshFailure};
use support::browser::Browser;
use support::oidc_stack::{bad_block, bad_stack, logged_in, merge, real_stack, BadStack};
use support::stack::{Stack, LOCAL_CLIENT_ID};
use support::util::wait_for;

/// An access-token lifetime inside the 60 s refresh margin: due at the next request, still
/// valid (a server-side store refreshes behind the response).
const DUE: u64 = 30;
/// An access token that has expired by the next request: refreshed before the request goes on.
const EXPIRED: u64 = 0;
/// Logged once a refreshed session is in the store.
const STORED: &str = "refreshed session stored";

/// A request through the proxy to the upstream, as an API call; returns the status.
async fn app_request(stack: &Stack, b: &Browser, path: &str) -> u16 {
    b.api_get(&stack.url(path)).await.status.as_u16()
}

async fn post_logout(stack: &Stack, b: &Browser) {
    let page = b
        .send(
            b.client
                .post(stack.url("/_sso/logout"))
                .header("origin", stack.base()),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
}

// ---- refresh (BadOp) ---------------------------------------------------------------------------

async fn refresh_rotates_on_every_due_request(store: &'static str) -> Stack {
    let stack = BadStack::new("bad", Layout::default())
        .store(store)
        .start(|bad| bad_block(bad, "custom"), |_| {})
        .await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(DUE);
    bad.set_refresh_expires_in(DUE);
    let b = logged_in(&stack, "bad").await;
    assert_eq!(bad.refresh_requests(), 0, "no refresh at login");

    for round in 1..=3 {
        assert_eq!(app_request(&stack, &b, &format!("/app/{round}")).await, 200);
        stack.proxy.wait_for_log(STORED, round).await;
        assert_eq!(bad.refresh_requests(), round, "one refresh per due request");
    }
    let issued = bad.issued_refresh_tokens();
    let presented = bad.presented_refresh_tokens();
    assert_eq!(issued.len(), 4, "the login's token and three rotations");
    // Each refresh used the token the previous one returned: the rotated token was stored.
    assert_eq!(presented, issued[..3].to_vec());
    assert_eq!(bad.reused_refresh_tokens(), 0);
    assert!(bad.token_errors().is_empty(), "{:?}", bad.token_errors());
    assert_eq!(stack.assert_logged_in(&b).await["user"], "dave");
    stack.assert_no_secrets_in("logs", &stack.proxy.logs());
    stack
}

#[tokio::test]
async fn refresh_when_the_access_token_nears_expiry_stores_the_rotated_refresh_token() {
    refresh_rotates_on_every_due_request("memory").await;
}

#[tokio::test]
async fn refresh_with_the_cookie_store_stores_the_rotated_refresh_token_in_the_cookie() {
    refresh_rotates_on_every_due_request("cookie").await;
}

#[tokio::test]
async fn refresh_without_rotation_keeps_using_the_same_refresh_token() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(false);
    bad.set_expires_in(DUE);
    bad.set_refresh_expires_in(DUE);
    let b = logged_in(&stack, "bad").await;
    assert_eq!(app_request(&stack, &b, "/one").await, 200);
    stack.proxy.wait_for_log(STORED, 1).await;
    assert_eq!(bad.refresh_requests(), 1);
    // No new refresh token came back: the session keeps the one it has.
    let issued = bad.issued_refresh_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(bad.presented_refresh_tokens(), issued);
    assert!(bad.token_errors().is_empty(), "{:?}", bad.token_errors());
    assert_eq!(app_request(&stack, &b, "/two").await, 200);
    stack.assert_logged_in(&b).await;
}

#[tokio::test]
async fn no_refresh_while_the_access_token_is_fresh() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(3600);
    let b = logged_in(&stack, "bad").await;
    for i in 0..3 {
        assert_eq!(app_request(&stack, &b, &format!("/fresh/{i}")).await, 200);
    }
    assert_eq!(bad.refresh_requests(), 0);
}

#[tokio::test]
async fn after_a_refresh_the_new_expiry_is_used() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(DUE);
    bad.set_refresh_expires_in(3600);
    let b = logged_in(&stack, "bad").await;
    assert_eq!(app_request(&stack, &b, "/r/0").await, 200);
    stack.proxy.wait_for_log(STORED, 1).await;
    for i in 1..3 {
        assert_eq!(app_request(&stack, &b, &format!("/r/{i}")).await, 200);
    }
    assert_eq!(bad.refresh_requests(), 1, "only the first request was due");
}

#[tokio::test]
async fn without_a_refresh_token_an_expiring_access_token_keeps_the_session() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.set_expires_in(DUE);
    let b = logged_in(&stack, "bad").await;
    assert_eq!(app_request(&stack, &b, "/x").await, 200);
    assert_eq!(bad.refresh_requests(), 0);
    stack.assert_logged_in(&b).await;
}

async fn concurrent_requests_refresh_once(store: &'static str) {
    let stack = BadStack::new("bad", Layout::default())
        .store(store)
        .start(|bad| bad_block(bad, "custom"), |_| {})
        .await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(DUE);
    bad.set_refresh_expires_in(3600);
    // Hold the refresh answer so that every request is in flight at once.
    bad.set_refresh_delay(Duration::from_millis(400));
    let b = logged_in(&stack, "bad").await;
    let before = stack.session_cookie(&b);
    let statuses = join_all((0..8).map(|i| {
        let b = &b;
        let stack = &stack;
        async move { app_request(stack, b, &format!("/concurrent/{i}")).await }
    }))
    .await;
    assert_eq!(statuses, vec![200; 8]);
    stack.proxy.wait_for_log(STORED, 1).await;
    assert_eq!(bad.refresh_requests(), 1, "exactly one refresh");
    assert_eq!(bad.reused_refresh_tokens(), 0);

    // A late request that still carries the pre-refresh cookie (cookie store: the old refresh
    // token) does not replay the rotated token.
    if let Some(old) = before {
        let late = Browser::new();
        late.jar.add_cookie_str(
            &format!("sso_session={old}; Path=/"),
            &url::Url::parse(stack.base()).unwrap(),
        );
        assert_eq!(app_request(&stack, &late, "/late").await, 200);
    }
    assert_eq!(bad.refresh_requests(), 1);
    assert_eq!(bad.reused_refresh_tokens(), 0);
    assert_eq!(app_request(&stack, &b, "/after").await, 200);
    assert_eq!(bad.refresh_requests(), 1);
}

#[tokio::test]
async fn refresh_with_the_redis_store_takes_the_shared_lock_and_stores_the_rotated_token() {
    let redis = support::redis::RedisServer::start();
    let url: &'static str = Box::leak(redis.url(0).into_boxed_str());
    let stack = refresh_rotates_on_every_due_request(url).await;
    // Each refresh took the shared lock for its refresh token: three due requests and the
    // closing `/_sso/userinfo` check (whose refresh runs behind it).
    stack.proxy.wait_for_log(STORED, 4).await;
    let locks = redis.cli(&["KEYS", "sso-proxy:once:refresh:*"]);
    assert_eq!(locks.lines().count(), 4, "{locks}");
}

#[tokio::test]
async fn two_replicas_refresh_a_shared_session_once() {
    let redis = support::redis::RedisServer::start();
    let url: &'static str = Box::leak(redis.url(0).into_boxed_str());
    let stack = BadStack::new("bad", Layout::default())
        .store(url)
        .start(|bad| bad_block(bad, "custom"), |_| {})
        .await;
    let mut config = stack.config.clone();
    config["listen"] = json!(format!("127.0.0.1:{}", support::util::free_port()));
    let b_proxy =
        support::proxy::spawn_proxy_with(&serde_yaml::to_string(&config).unwrap(), true).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(EXPIRED);
    bad.set_refresh_expires_in(3600);
    bad.set_refresh_delay(Duration::from_millis(400));
    let b = logged_in(&stack, "bad").await;
    // The same browser's requests hit both replicas at once.
    let statuses = join_all((0..6).map(|i| {
        let b = &b;
        let base = if i % 2 == 0 {
            stack.base().to_owned()
        } else {
            b_proxy.base_url.clone()
        };
        async move { b.api_get(&format!("{base}/both/{i}")).await.status.as_u16() }
    }))
    .await;
    assert_eq!(statuses, vec![200; 6]);
    assert_eq!(
        bad.refresh_requests(),
        1,
        "exactly one refresh across the replicas"
    );
    assert_eq!(bad.reused_refresh_tokens(), 0);
    // Both replicas now serve the refreshed session without refreshing again.
    for base in [stack.base().to_owned(), b_proxy.base_url.clone()] {
        assert_eq!(
            b.api_get(&format!("{base}/after")).await.status.as_u16(),
            200
        );
    }
    assert_eq!(bad.refresh_requests(), 1);
}

#[tokio::test]
async fn concurrent_requests_trigger_exactly_one_refresh() {
    concurrent_requests_refresh_once("memory").await;
}

#[tokio::test]
async fn concurrent_requests_trigger_exactly_one_refresh_with_the_cookie_store() {
    concurrent_requests_refresh_once("cookie").await;
}

#[tokio::test]
async fn invalid_grant_on_refresh_ends_the_session() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(EXPIRED);
    let b = logged_in(&stack, "bad").await;
    bad.set_refresh_failure(Some(RefreshFailure::InvalidGrant));
    let before = stack.echo.request_count();
    assert_eq!(app_request(&stack, &b, "/after-disable").await, 401);
    assert_eq!(stack.echo.request_count(), before, "upstream not reached");
    assert_eq!(bad.refresh_requests(), 1);
    // A navigation goes to the login again.
    let page = b.navigate(&stack.url("/page")).await;
    assert_eq!(page.status, 302);
    assert_eq!(page.location().unwrap().path(), "/_sso/login");
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn reused_rotated_refresh_token_ends_the_session() {
    // The IdP says the presented refresh token is no longer valid (as after a reuse elsewhere).
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(EXPIRED);
    bad.set_refresh_expires_in(EXPIRED);
    let b = logged_in(&stack, "bad").await;
    // Someone else rotates the token first (a stolen copy): ours becomes a reuse.
    let rt = bad.issued_refresh_tokens()[0].clone();
    let other = reqwest::Client::new()
        .post(bad.url("/token"))
        .basic_auth(&bad.client_id, Some(&bad.client_secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(app_request(&stack, &b, "/after-theft").await, 401);
    assert_eq!(bad.reused_refresh_tokens(), 1);
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn server_error_on_refresh_keeps_the_session() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(EXPIRED);
    let b = logged_in(&stack, "bad").await;
    bad.set_refresh_failure(Some(RefreshFailure::ServerError));
    assert_eq!(app_request(&stack, &b, "/during-outage").await, 200);
    assert_eq!(bad.refresh_requests(), 1);
    assert_eq!(stack.echo.last().header("x-forwarded-user"), Some("dave"));
    // Still logged in; a failure is not retried at once (no hammering of a failing IdP).
    assert_eq!(app_request(&stack, &b, "/during-outage-2").await, 200);
    assert_eq!(bad.refresh_requests(), 1);
    stack.assert_logged_in(&b).await;
}

#[tokio::test]
async fn a_due_refresh_runs_behind_the_response_with_a_server_side_store() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(DUE);
    bad.set_refresh_expires_in(DUE);
    bad.set_refresh_delay(Duration::from_secs(2));
    let b = logged_in(&stack, "bad").await;
    assert_eq!(app_request(&stack, &b, "/now").await, 200);
    // The response came back while the token endpoint was still holding its answer.
    assert_eq!(
        bad.issued_refresh_tokens().len(),
        1,
        "the request waited for the refresh"
    );
    stack.proxy.wait_for_log(STORED, 1).await;
    // The rotated token was stored: the next due refresh presents it.
    assert_eq!(app_request(&stack, &b, "/next").await, 200);
    stack.proxy.wait_for_log(STORED, 2).await;
    let issued = bad.issued_refresh_tokens();
    assert_eq!(bad.presented_refresh_tokens(), issued[..2].to_vec());
    assert_eq!(bad.reused_refresh_tokens(), 0);
    stack.assert_logged_in(&b).await;
}

#[tokio::test]
async fn a_due_refresh_with_the_cookie_store_is_done_before_the_response() {
    let stack = BadStack::new("bad", Layout::default())
        .store("cookie")
        .start(|bad| bad_block(bad, "custom"), |_| {})
        .await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(DUE);
    bad.set_refresh_delay(Duration::from_millis(500));
    let b = logged_in(&stack, "bad").await;
    assert_eq!(app_request(&stack, &b, "/now").await, 200);
    // Only this response can carry the refreshed session (the rotated token) back.
    assert_eq!(bad.issued_refresh_tokens().len(), 2);
}

#[tokio::test]
async fn invalid_grant_behind_the_response_ends_the_session_by_the_next_request() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    bad.set_expires_in(DUE);
    let b = logged_in(&stack, "bad").await;
    bad.set_refresh_failure(Some(RefreshFailure::InvalidGrant));
    // The access token is still valid: this request goes on.
    assert_eq!(app_request(&stack, &b, "/still-valid").await, 200);
    stack
        .proxy
        .wait_for_log("refresh token refused; session ended", 1)
        .await;
    let before = stack.echo.request_count();
    assert_eq!(app_request(&stack, &b, "/after-disable").await, 401);
    assert_eq!(stack.echo.request_count(), before, "upstream not reached");
    stack.assert_no_session(&b).await;
}

// ---- refresh (real OP) -------------------------------------------------------------------------

/// The OP's events once every event so far has been read from its stderr: a bogus code
/// exchange (`grant.error authorization_code ...`) is the barrier, since events come in order.
async fn settled_events(stack: &Stack) -> Vec<String> {
    let op = stack.op();
    let barriers = |events: &[String]| {
        events
            .iter()
            .filter(|e| e.starts_with("grant.error authorization_code"))
            .count()
    };
    let before = barriers(&op.events());
    let answer = reqwest::Client::new()
        .post(format!("{}/token", op.issuer))
        .basic_auth(LOCAL_CLIENT_ID, Some(&stack.local_client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "barrier"),
            ("redirect_uri", "http://127.0.0.1:9/none"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    wait_for("the OP's event barrier", Duration::from_secs(5), || async {
        let events = op.events();
        (barriers(&events) > before).then_some(events)
    })
    .await
}

async fn refresh_events(stack: &Stack) -> usize {
    let events = settled_events(stack).await;
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("grant.error refresh_token")),
        "{events:?}"
    );
    events
        .iter()
        .filter(|e| *e == "grant.success refresh_token")
        .count()
}

#[tokio::test]
async fn real_op_refresh_with_rotation_keeps_the_session_going() {
    let stack = real_stack(
        &[
            ("OP_ACCESS_TOKEN_TTL", "30"),
            ("OP_REFRESH_TOKENS", "1"),
            ("OP_ROTATE_REFRESH_TOKENS", "1"),
        ],
        false,
        |_| {},
    )
    .await;
    let b = stack.browser_as("alice").await;
    assert_eq!(refresh_events(&stack).await, 0);
    // Each refresh runs behind its request (the access token is still valid for 30 s).
    assert_eq!(app_request(&stack, &b, "/one").await, 200);
    stack.proxy.wait_for_log(STORED, 1).await;
    assert_eq!(refresh_events(&stack).await, 1);
    // The rotated token is used next (a reuse would make oidc-provider revoke the grant).
    assert_eq!(app_request(&stack, &b, "/two").await, 200);
    stack.proxy.wait_for_log(STORED, 2).await;
    assert_eq!(refresh_events(&stack).await, 2);
    assert_eq!(app_request(&stack, &b, "/three").await, 200);
    stack.proxy.wait_for_log(STORED, 3).await;
    assert_eq!(refresh_events(&stack).await, 3);
    assert_eq!(stack.assert_logged_in(&b).await["user"], "alice");
}

#[tokio::test]
async fn real_op_concurrent_requests_trigger_one_refresh() {
    let stack = real_stack(
        &[
            ("OP_ACCESS_TOKEN_TTL", "30"),
            // Refreshed tokens are not due again, so a request that comes after the refresh
            // (rather than during it) does not refresh legitimately a second time.
            ("OP_REFRESHED_ACCESS_TOKEN_TTL", "3600"),
            ("OP_REFRESH_TOKENS", "1"),
            ("OP_ROTATE_REFRESH_TOKENS", "1"),
        ],
        false,
        |_| {},
    )
    .await;
    let b = stack.browser_as("bob").await;
    let statuses = join_all((0..6).map(|i| {
        let b = &b;
        let stack = &stack;
        async move { app_request(stack, b, &format!("/c/{i}")).await }
    }))
    .await;
    assert_eq!(statuses, vec![200; 6]);
    stack.proxy.wait_for_log(STORED, 1).await;
    assert_eq!(refresh_events(&stack).await, 1, "exactly one refresh");
    stack.assert_logged_in(&b).await;
}

// ---- revocation --------------------------------------------------------------------------------

#[tokio::test]
async fn logout_revokes_the_refresh_token_at_revocation_url() {
    let stack = BadStack::new("bad", Layout::default())
        .start(
            |bad| {
                let mut block = bad_block(bad, "custom");
                merge(&mut block, json!({ "revocation_url": bad.url("/revoke") }));
                block
            },
            |_| {},
        )
        .await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(false);
    let b = logged_in(&stack, "bad").await;
    let rt = bad.issued_refresh_tokens()[0].clone();
    post_logout(&stack, &b).await;
    assert_eq!(
        bad.revocations(),
        vec![("refresh_token".to_owned(), rt)],
        "only the refresh token is kept, so only it is revoked"
    );
    assert_eq!(
        bad.token_auth_methods().last().map(String::as_str),
        Some("client_secret_basic"),
        "revocation authenticates the client"
    );
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn logout_revokes_refresh_and_access_tokens_at_the_discovered_endpoint() {
    let layout = Layout {
        revocation: Some("/revoke".into()),
        ..Layout::default()
    };
    let stack = BadStack::new("bad", layout)
        .start(
            |bad| bad_block(bad, "custom"),
            |c| {
                c["headers"] = json!({ "pass_access_token": true });
            },
        )
        .await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(false);
    let b = logged_in(&stack, "bad").await;
    let rt = bad.issued_refresh_tokens()[0].clone();
    let at = bad.last_access_token().unwrap();
    post_logout(&stack, &b).await;
    assert_eq!(
        bad.revocations(),
        vec![
            ("refresh_token".to_owned(), rt),
            ("access_token".to_owned(), at)
        ]
    );
}

#[tokio::test]
async fn logout_without_a_revocation_endpoint_revokes_nothing() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(false);
    let b = logged_in(&stack, "bad").await;
    post_logout(&stack, &b).await;
    assert!(bad.revocations().is_empty());
    assert_eq!(bad.hits("/revoke"), 0);
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn logout_still_ends_the_session_when_revocation_fails() {
    let stack = BadStack::new("bad", Layout::default())
        .start(
            |bad| {
                let mut block = bad_block(bad, "custom");
                merge(
                    &mut block,
                    json!({ "revocation_url": bad.url("/no-such-endpoint") }),
                );
                block
            },
            |_| {},
        )
        .await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(false);
    let b = logged_in(&stack, "bad").await;
    post_logout(&stack, &b).await;
    assert_eq!(bad.hits("/no-such-endpoint"), 1);
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn real_op_logout_revokes_the_refresh_token() {
    let stack = real_stack(&[("OP_REFRESH_TOKENS", "1")], false, |_| {}).await;
    let discovery = stack.op().discovery().await;
    assert!(discovery["revocation_endpoint"].is_string(), "{discovery}");
    let b = stack.browser_as("alice").await;
    post_logout(&stack, &b).await;
    wait_for(
        "the OP to destroy the refresh token",
        Duration::from_secs(5),
        || async {
            stack
                .op()
                .events()
                .iter()
                .any(|e| e == "refresh_token.destroyed")
                .then_some(())
        },
    )
    .await;
    let events = stack.op().events();
    assert!(
        !events.iter().any(|e| e.starts_with("revocation.error")),
        "{events:?}"
    );
    stack.assert_no_session(&b).await;
}
