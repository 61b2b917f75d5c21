//! The callback against a misbehaving OP (DESIGN 6 "ID tokens", "JWKS", "Authorization
//! requests"): every defect is refused with a short 4xx page, no token on it, and no session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::json;
use support::bad_op::Mode;
use support::browser::{Browser, LoginResult};
use support::stack::{Stack, StackOptions, BAD};

/// Log in at the BadOp in `mode`; assert a 4xx page from the callback (status in `allowed`),
/// no token or secret on it, and no session afterwards.
async fn assert_rejected_in(stack: &Stack, mode: Mode, allowed: &[u16]) -> LoginResult {
    stack.bad().set_mode(mode);
    let b = Browser::new();
    let r = stack.login_bad(&b, None).await;
    assert!(
        r.callback_url.is_some(),
        "{mode:?}: the flow never reached the callback:\n  {}",
        r.trail_text()
    );
    let status = r.status().as_u16();
    assert!(
        allowed.contains(&status),
        "{mode:?}: expected a status in {allowed:?}, got {status}; body:\n{}",
        r.response.body
    );
    let body = &r.response.body;
    stack.assert_no_secrets_in(&format!("{mode:?} error page"), body);
    assert!(body.len() < 8 * 1024, "{mode:?}: the error page is short");
    assert!(
        body.to_ascii_lowercase().contains("request id"),
        "{mode:?}: the error page shows the request id: {body}"
    );
    assert!(
        !body.contains("panicked") && !body.contains(".rs:"),
        "{mode:?}: no stack trace on the page: {body}"
    );
    for value in r.response.header_all("set-cookie") {
        stack.assert_no_secrets_in("Set-Cookie", &value);
    }
    assert_no_pending_cookie(stack, &b, &format!("{mode:?}"));
    stack.assert_no_session(&b).await;
    r
}

/// The pending-login cookie the failed callback used is gone from the browser.
fn assert_no_pending_cookie(stack: &Stack, b: &Browser, what: &str) {
    let left: Vec<String> = b
        .cookies_for(stack.base())
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("sso_session_st_"))
        .collect();
    assert!(
        left.is_empty(),
        "{what}: pending cookie left after a failed callback: {left:?}"
    );
}

const LOGIN_FAILED: &[u16] = &[400, 401, 403];

async fn rejected(mode: Mode) {
    let stack = Stack::with_bad_op().await;
    assert_rejected_in(&stack, mode, LOGIN_FAILED).await;
}

#[tokio::test]
async fn callback_rejects_bad_signature_with_403() {
    let stack = Stack::with_bad_op().await;
    assert_rejected_in(&stack, Mode::BadSignature, &[403]).await;
}

#[tokio::test]
async fn callback_rejects_alg_none() {
    rejected(Mode::AlgNone).await;
}

#[tokio::test]
async fn callback_rejects_hmac_signed_with_the_public_key() {
    rejected(Mode::HmacWithPublicKey).await;
}

#[tokio::test]
async fn callback_rejects_key_embedded_in_jwk_header() {
    rejected(Mode::EmbeddedJwk).await;
}

#[tokio::test]
async fn callback_rejects_key_from_jku_header() {
    rejected(Mode::JkuHeader).await;
}

#[tokio::test]
async fn callback_rejects_wrong_issuer() {
    rejected(Mode::WrongIss).await;
}

#[tokio::test]
async fn callback_rejects_issuer_with_trailing_slash() {
    rejected(Mode::IssTrailingSlash).await;
}

#[tokio::test]
async fn callback_rejects_wrong_audience() {
    rejected(Mode::WrongAud).await;
}

#[tokio::test]
async fn callback_rejects_azp_mismatch() {
    rejected(Mode::AzpMismatch).await;
}

#[tokio::test]
async fn callback_rejects_multiple_audiences_without_azp() {
    rejected(Mode::MultiAudNoAzp).await;
}

#[tokio::test]
async fn callback_accepts_multiple_audiences_with_matching_azp() {
    let stack = Stack::with_bad_op().await;
    stack.bad().set_mode(Mode::MultiAudWithAzp);
    let b = Browser::new();
    stack.login_bad(&b, None).await.expect_success();
    assert_eq!(stack.assert_logged_in(&b).await["user"], "dave");
}

#[tokio::test]
async fn callback_rejects_expired_id_token() {
    rejected(Mode::Expired).await;
}

#[tokio::test]
async fn callback_rejects_not_yet_valid_id_token() {
    rejected(Mode::NotYetValid).await;
}

#[tokio::test]
async fn callback_rejects_wrong_nonce() {
    rejected(Mode::WrongNonce).await;
}

#[tokio::test]
async fn callback_rejects_missing_nonce() {
    rejected(Mode::MissingNonce).await;
}

#[tokio::test]
async fn callback_rejects_wrong_iss_response_parameter() {
    rejected(Mode::WrongIssResponseParam).await;
}

#[tokio::test]
async fn callback_with_idp_error_shows_a_page_and_never_calls_the_token_endpoint() {
    let stack = Stack::with_bad_op().await;
    let r = assert_rejected_in(&stack, Mode::IdpError, &[400, 401, 403]).await;
    assert_eq!(stack.bad().token_requests(), 0);
    let ct = r.response.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/html"), "an HTML error page, got {ct}");
}

#[tokio::test]
async fn callback_accepts_rotated_key_after_exactly_one_jwks_refetch() {
    let stack = Stack::with_bad_op().await;
    let bad = stack.bad();
    // A first login fills the JWKS cache.
    stack.browser_bad().await;
    let before = bad.jwks_fetches();
    assert!(before >= 1, "the proxy fetched the JWKS");

    bad.set_mode(Mode::UnknownKidThenRotate);
    let b = Browser::new();
    stack.login_bad(&b, None).await.expect_success();
    assert_eq!(
        bad.jwks_fetches(),
        before + 1,
        "exactly one refetch for the new kid"
    );
    stack.assert_logged_in(&b).await;

    // The rotated key is cached now: another login needs no fetch.
    let b2 = Browser::new();
    stack.login_bad(&b2, None).await.expect_success();
    assert_eq!(bad.jwks_fetches(), before + 1);
}

#[tokio::test]
async fn concurrent_logins_after_a_key_rotation_refetch_the_jwks_once() {
    let stack = Stack::with_bad_op().await;
    let bad = stack.bad();
    stack.browser_bad().await;
    let before = bad.jwks_fetches();

    bad.set_mode(Mode::UnknownKidThenRotate);
    // A slow JWKS keeps the first refetch in flight while the other callbacks arrive.
    bad.set_jwks_delay(std::time::Duration::from_millis(400));
    let browsers: Vec<Browser> = (0..6).map(|_| Browser::new()).collect();
    let logins = browsers.iter().map(|b| stack.login_bad(b, None));
    for result in futures_util::future::join_all(logins).await {
        result.expect_success();
    }
    assert_eq!(
        bad.jwks_fetches(),
        before + 1,
        "six concurrent callbacks share one refetch"
    );
    for b in &browsers {
        stack.assert_logged_in(b).await;
    }
}

#[tokio::test]
async fn a_slow_jwks_at_one_idp_does_not_stall_refetches_for_another() {
    use support::bad_op::BadOp;
    use support::stack::BAD_CLIENT_ID;
    let other = BadOp::start(BAD_CLIENT_ID, &support::util::random_string(32));
    let stack = Stack::start(StackOptions::bad(), |c| {
        c["providers"]["other"] = support::stack::oidc_provider(
            "Other OP",
            &other.issuer,
            BAD_CLIENT_ID,
            &other.client_secret,
        );
    })
    .await;
    let slow = stack.bad();
    // Warm both key caches.
    stack.browser_bad().await;
    support::oidc_stack::logged_in(&stack, "other").await;

    // Both IdPs rotate; the first one's JWKS takes 4 s to answer.
    slow.set_mode(Mode::UnknownKidThenRotate);
    slow.set_jwks_delay(std::time::Duration::from_secs(4));
    other.set_mode(Mode::UnknownKidThenRotate);
    let jwks_asked = slow.hits("/jwks");
    let stuck = Browser::new();
    let stuck_login = stack.login_bad(&stuck, None);
    let fast_login = async {
        support::util::wait_for(
            "the slow JWKS refetch to start",
            std::time::Duration::from_secs(5),
            || async { (slow.hits("/jwks") > jwks_asked).then_some(()) },
        )
        .await;
        let started = std::time::Instant::now();
        let b = Browser::new();
        support::oidc_stack::login(&stack, "other", &b)
            .await
            .expect_success();
        started.elapsed()
    };
    let (slow_result, fast_elapsed) = tokio::join!(stuck_login, fast_login);
    slow_result.expect_success();
    assert!(
        fast_elapsed < std::time::Duration::from_secs(2),
        "the other IdP's refetch waited {fast_elapsed:?} for the slow one"
    );
}

/// Wait until the proxy fetched the JWKS more than `seen` times (the periodic refresh).
async fn wait_for_jwks_fetch(stack: &Stack, seen: usize) {
    support::util::wait_for(
        "a periodic JWKS refresh",
        std::time::Duration::from_secs(10),
        || async { (stack.bad().jwks_fetches() > seen).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn periodic_refresh_drops_a_removed_key_and_keeps_keys_while_the_idp_is_down() {
    let stack = Stack::start(StackOptions::bad(), |c| {
        c["oidc_refresh_interval"] = json!("1s");
    })
    .await;
    let bad = stack.bad();
    stack.browser_bad().await;
    let discovery_before = bad.hits("/.well-known/openid-configuration");

    // The JWKS endpoint fails: the refresh keeps the cached keys, logins go on.
    bad.set_jwks_status(Some(503));
    wait_for_jwks_fetch(&stack, bad.jwks_fetches()).await;
    stack.browser_bad().await;
    bad.set_jwks_status(None);

    // The IdP removes the key its tokens are (still) signed with: after the next refresh the
    // proxy no longer trusts it, although no unknown kid ever forced a refetch.
    bad.remove_primary_key_from_jwks();
    wait_for_jwks_fetch(&stack, bad.jwks_fetches()).await;
    let r = assert_rejected_in(&stack, Mode::Good, &[401]).await;
    assert!(
        r.response.body.contains("kid") || r.response.body.contains("key"),
        "{}",
        r.response.body
    );
    assert!(
        bad.hits("/.well-known/openid-configuration") > discovery_before,
        "the discovery document is refreshed too"
    );
}

/// A connection whose `key` endpoint points at a port where nothing listens.
async fn stack_with_unreachable(key: &str) -> Stack {
    let closed = format!("http://127.0.0.1:{}/down", support::util::free_port());
    Stack::start(StackOptions::bad(), |c| {
        c["providers"][BAD][key] = json!(closed);
    })
    .await
}

#[tokio::test]
async fn callback_with_the_token_endpoint_unreachable_is_a_502_page_without_session() {
    let stack = stack_with_unreachable("access_token_url").await;
    let r = assert_rejected_in(&stack, Mode::Good, &[502]).await;
    assert!(
        r.response.body.contains("unavailable"),
        "{}",
        r.response.body
    );
    assert_eq!(stack.bad().token_requests(), 0);
}

#[tokio::test]
async fn callback_with_the_jwks_unreachable_is_a_502_page_without_session() {
    let stack = stack_with_unreachable("jwks_uri").await;
    let r = assert_rejected_in(&stack, Mode::Good, &[502]).await;
    assert!(
        r.response.body.contains("unavailable"),
        "{}",
        r.response.body
    );
    assert_eq!(stack.bad().token_requests(), 1, "the code was exchanged");
    assert_eq!(stack.bad().jwks_fetches(), 0);
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks_once_then_is_rate_limited() {
    let stack = Stack::with_bad_op().await;
    let bad = stack.bad();
    stack.browser_bad().await;
    let before = bad.jwks_fetches();

    assert_rejected_in(&stack, Mode::UnknownKid, LOGIN_FAILED).await;
    assert_eq!(
        bad.jwks_fetches(),
        before + 1,
        "the first unknown kid refetches at once"
    );
    assert_rejected_in(&stack, Mode::UnknownKid, LOGIN_FAILED).await;
    assert_eq!(
        bad.jwks_fetches(),
        before + 1,
        "no second refetch within 30 s"
    );

    // Cached keys keep working.
    bad.set_mode(Mode::Good);
    stack.browser_bad().await;
}

#[tokio::test]
async fn callback_rejects_userinfo_sub_mismatch() {
    let stack = Stack::start(StackOptions::bad(), |c| {
        c["providers"][BAD]["user_info_from_id_token"] = json!(false);
    })
    .await;
    // Control: with a matching sub the userinfo claims are used.
    let ok = stack.browser_bad().await;
    assert!(
        stack.bad().userinfo_requests() >= 1,
        "userinfo endpoint was called"
    );
    assert_eq!(
        stack.assert_logged_in(&ok).await["email"],
        "dave@example.com"
    );

    assert_rejected_in(&stack, Mode::UserinfoSubMismatch, LOGIN_FAILED).await;
}

#[tokio::test]
async fn callback_rejects_reused_state() {
    let stack = Stack::with_bad_op().await;
    let b = Browser::new();
    let first = stack.login_bad(&b, None).await;
    first.expect_success();
    let tokens = stack.bad().token_requests();

    // The same browser replays the same callback URL.
    let replay = b
        .navigate(first.callback_url.as_ref().unwrap().as_str())
        .await;
    let status = replay.status.as_u16();
    assert!(
        matches!(status, 400 | 401 | 403),
        "replay got {status}: {}",
        replay.body
    );
    assert_eq!(
        stack.bad().token_requests(),
        tokens,
        "a replay never reaches the token endpoint"
    );
    stack.assert_no_secrets_in("replay page", &replay.body);
}

#[tokio::test]
async fn callback_rejects_replay_with_the_captured_state_cookie() {
    let stack = Stack::with_bad_op().await;
    let b = Browser::new();
    let first = stack.login_bad(&b, None).await;
    first.expect_success();
    let tokens = stack.bad().token_requests();

    // An attacker who captured the callback URL and the cookies sent with it replays both.
    let attacker = Browser::new();
    let url = first.callback_url.clone().unwrap();
    for pair in first.callback_cookies.as_deref().unwrap_or("").split(';') {
        if !pair.trim().is_empty() {
            attacker.jar.add_cookie_str(pair.trim(), &url);
        }
    }
    let replay = attacker.navigate(url.as_str()).await;
    let status = replay.status.as_u16();
    assert!(
        matches!(status, 400 | 401 | 403),
        "replay got {status}: {}",
        replay.body
    );
    assert_eq!(
        stack.bad().token_requests(),
        tokens,
        "state is single-use on the server"
    );
    stack.assert_no_session(&attacker).await;
}

#[tokio::test]
async fn callback_rejects_state_from_another_browser() {
    let stack = Stack::with_bad_op().await;
    let victim = Browser::new();
    let start = victim
        .navigate(&stack.url(&format!("/_sso/login?provider={BAD}")))
        .await;
    let authorize = start.location().expect("redirect to the IdP");
    let back = victim.navigate(authorize.as_str()).await;
    let callback = back.location().expect("redirect to the callback");
    assert!(callback.path().starts_with("/callback_"), "{callback}");

    let attacker = Browser::new();
    let page = attacker.navigate(callback.as_str()).await;
    let status = page.status.as_u16();
    assert!(
        matches!(status, 400 | 401 | 403),
        "foreign state got {status}: {}",
        page.body
    );
    assert_eq!(
        stack.bad().token_requests(),
        0,
        "no code exchange for a foreign state"
    );
    stack.assert_no_session(&attacker).await;

    // The browser that started the login can still finish it.
    let done = victim.navigate(callback.as_str()).await;
    assert!(
        done.is_redirect(),
        "the owner finishes its login: {}",
        done.body
    );
    stack.assert_logged_in(&victim).await;
}

#[tokio::test]
async fn callback_without_state_or_code_is_rejected() {
    let stack = Stack::with_bad_op().await;
    let b = Browser::new();
    for query in ["", "?code=abc", "?state=abc", "?code=abc&state=abc"] {
        let page = b
            .navigate(&stack.url(&format!("/callback_{BAD}{query}")))
            .await;
        let status = page.status.as_u16();
        assert!(
            matches!(status, 400 | 401 | 403),
            "{query}: {status} {}",
            page.body
        );
    }
    // Not a connection of ours: an ordinary path or a 4xx, never a 5xx.
    let page = b
        .navigate(&stack.url("/callback_nope?code=abc&state=abc"))
        .await;
    assert!(
        page.status.as_u16() < 500,
        "unknown connection: {}",
        page.status
    );
    assert_eq!(stack.bad().token_requests(), 0);
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn pending_state_cookies_are_capped_and_oldest_evicted() {
    let stack = Stack::with_bad_op().await;
    let b = Browser::new();
    let mut callbacks = Vec::new();
    for i in 0..8 {
        if i == 1 {
            // Creation times may have one-second resolution: make the first login the
            // unambiguously oldest one.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        let start = b
            .navigate(&stack.url(&format!("/_sso/login?provider={BAD}")))
            .await;
        let authorize = start.location().expect("redirect to the IdP");
        let back = b.navigate(authorize.as_str()).await;
        callbacks.push(back.location().expect("redirect to the callback"));
    }
    let ours = b.cookie_names_set_by(stack.base());
    let pending: Vec<_> = b
        .cookies_for(&stack.url("/"))
        .into_iter()
        .filter(|(n, _)| ours.contains(n) && n != "sso_session")
        .collect();
    assert!(!pending.is_empty(), "pending state lives in cookies");
    assert!(
        pending.len() <= 5,
        "at most 5 pending-state cookies: {pending:?}"
    );
    let header_len = b.cookie_header(&stack.url("/")).unwrap_or_default().len();
    assert!(
        header_len < 8 * 1024,
        "cookie header stays small: {header_len} bytes"
    );

    let oldest = b.navigate(callbacks[0].as_str()).await;
    assert!(
        oldest.status.is_client_error(),
        "the oldest state was evicted: {}",
        oldest.status
    );
    let newest = b.navigate(callbacks[7].as_str()).await;
    assert!(
        newest.is_redirect(),
        "the newest state still works: {} {}",
        newest.status,
        newest.body
    );
    stack.assert_logged_in(&b).await;
}

#[tokio::test]
async fn logs_never_contain_tokens_or_secrets() {
    let stack = Stack::start(StackOptions::bad(), |c| {
        c["providers"][BAD]["debug"] = json!(true);
        c["log"]["level"] = json!("trace");
    })
    .await;
    let b = stack.browser_bad().await;
    stack.assert_logged_in(&b).await;
    let marker = format!("/log-marker-{}", support::util::random_string(8));
    assert_eq!(b.navigate(&stack.url(&marker)).await.status, 200);
    assert_rejected_in(&stack, Mode::BadSignature, LOGIN_FAILED).await;
    // Give the log pipe a moment to deliver the lines about the marker request, if logged.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        while !stack.proxy.logs().contains(&marker) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;

    let logs = stack.proxy.logs();
    stack.assert_no_secrets_in("the proxy's logs", &logs);
    let session = stack.session_cookie(&b).unwrap();
    assert!(
        !logs.contains(&session),
        "the logs contain the session cookie"
    );
}

// ---- request ids in the logs ----------------------------------------------------------------

/// The request id an error page shows.
fn page_request_id(body: &str) -> String {
    let start = body
        .find("Request id: <code>")
        .expect("request id on the page")
        + 18;
    let end = body[start..].find("</code>").unwrap() + start;
    body[start..end].to_owned()
}

#[tokio::test]
async fn json_log_lines_parse_and_carry_the_request_id_shown_on_the_error_page() {
    let stack = Stack::start(StackOptions::bad(), |c| {
        c["log"] = json!({ "format": "json", "level": "debug" });
    })
    .await;
    let r = assert_rejected_in(&stack, Mode::WrongNonce, LOGIN_FAILED).await;
    let id = page_request_id(&r.response.body);
    let logs = stack.proxy.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    // Every line logged inside the callback's request span carries its id.
    let in_span: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"].as_str() == Some(id.as_str()))
        .collect();
    assert!(
        in_span.len() >= 2,
        "lines of request {id} carry span.request_id: {logs}"
    );
    assert!(
        in_span
            .iter()
            .any(|l| l["message"] == "request refused" && l["status"] == 401),
        "the refusal is logged under the page's request id: {logs}"
    );
}

#[tokio::test]
async fn text_log_lines_carry_the_request_id_shown_on_the_error_page() {
    let stack = Stack::with_bad_op().await;
    let r = assert_rejected_in(&stack, Mode::WrongNonce, LOGIN_FAILED).await;
    let id = page_request_id(&r.response.body);
    let logs = stack.proxy.logs();
    let needle = format!("request_id={id}");
    assert!(
        logs.lines()
            .any(|l| l.contains(&needle) && l.contains("request refused")),
        "{needle} on the refusal line: {logs}"
    );
}
