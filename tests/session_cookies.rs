//! Session cookies under attack (DESIGN 6 "Cookies"): garbage, truncated, tampered, giant or
//! foreign cookies count as no session and never cause a 5xx; the cookie store seals and chunks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use base64::Engine as _;
use support::bad_op::BadUser;
use support::browser::Browser;
use support::raw;
use support::stack::{Stack, StackOptions};

/// Variants of a valid cookie value that must all be refused.
fn tampered(valid: &str) -> Vec<(String, String)> {
    let mid = valid.len() / 2;
    let mut flipped = valid.as_bytes().to_vec();
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let random = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(support::util::random_string(96).as_bytes());
    vec![
        ("empty".into(), String::new()),
        ("garbage".into(), "garbage".into()),
        ("percent junk".into(), "%%%zz%".into()),
        ("random base64".into(), random),
        (
            "jwt-looking".into(),
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.".into(),
        ),
        ("truncated".into(), valid[..mid].to_owned()),
        (
            "one byte flipped".into(),
            String::from_utf8(flipped).unwrap(),
        ),
        ("extended".into(), format!("{valid}AAAA")),
        ("reversed".into(), valid.chars().rev().collect()),
        ("giant 6 KiB".into(), "A".repeat(6 * 1024)),
    ]
}

/// A request path, its headers and the statuses it may get.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u16]);

async fn assert_refused_everywhere(stack: &Stack, what: &str, cookie: &str) {
    let port = stack.proxy.port;
    let cases: [Case; 4] = [
        ("/private", &[("Accept", "*/*")], &[401]),
        (
            "/private",
            &[("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")],
            &[302],
        ),
        ("/_sso/userinfo", &[("Accept", "application/json")], &[401]),
        ("/_sso/auth", &[("Accept", "*/*")], &[401]),
    ];
    for (path, headers, expected) in cases {
        let mut all = headers.to_vec();
        all.push(("Cookie", cookie));
        let r = raw::get(port, path, &all).await;
        assert!(
            r.status < 500,
            "{what}: {path} gave {} (never 5xx): {}",
            r.status,
            r.body
        );
        assert!(
            expected.contains(&r.status),
            "{what}: {path} expected {expected:?}, got {}: {}",
            r.status,
            r.body
        );
    }
}

async fn garbage_cookies_are_no_session(store: &'static str) {
    let stack = Stack::start(StackOptions::bad().store(store), |_| {}).await;
    let b = stack.browser_bad().await;
    let valid = stack.session_cookie(&b).expect("session cookie");
    // Control: the valid cookie works on its own.
    let ok = raw::get(
        stack.proxy.port,
        "/_sso/userinfo",
        &[("Cookie", &format!("sso_session={valid}"))],
    )
    .await;
    assert_eq!(ok.status, 200, "valid cookie: {}", ok.body);

    for (what, value) in tampered(&valid) {
        assert_refused_everywhere(&stack, &what, &format!("sso_session={value}")).await;
    }
    // Several giant cookies at once: refused or rejected as too large, never a 5xx.
    let giant: Vec<String> = (0..3)
        .map(|i| format!("sso_session_{i}={}", "B".repeat(5000)))
        .collect();
    let r = raw::get(
        stack.proxy.port,
        "/_sso/userinfo",
        &[("Cookie", &giant.join("; "))],
    )
    .await;
    assert!(
        matches!(r.status, 400 | 401 | 413 | 431),
        "giant cookies: {} {}",
        r.status,
        r.body
    );
    assert_eq!(stack.echo.request_count(), 0, "nothing reached upstream");
}

#[tokio::test]
async fn garbage_session_cookies_are_no_session_in_memory_store() {
    garbage_cookies_are_no_session("memory").await;
}

#[tokio::test]
async fn garbage_session_cookies_are_no_session_in_cookie_store() {
    garbage_cookies_are_no_session("cookie").await;
}

#[tokio::test]
async fn sealed_cookie_from_another_secret_is_refused() {
    let a = Stack::start(StackOptions::bad().store("cookie"), |_| {}).await;
    let b = Stack::start(StackOptions::bad().store("cookie"), |_| {}).await;
    let browser = a.browser_bad().await;
    let cookie = format!("sso_session={}", a.session_cookie(&browser).unwrap());
    let on_a = raw::get(a.proxy.port, "/_sso/userinfo", &[("Cookie", &cookie)]).await;
    assert_eq!(on_a.status, 200);
    assert_refused_everywhere(&b, "cookie sealed by another proxy", &cookie).await;
}

#[tokio::test]
async fn cookie_store_chunks_large_sessions() {
    let stack = Stack::start(StackOptions::bad().store("cookie"), |_| {}).await;
    let groups: Vec<String> = (0..150)
        .map(|i| format!("group-with-a-rather-long-name-{i:03}"))
        .collect();
    stack.bad().set_user(BadUser {
        groups: groups.clone(),
        ..BadUser::default()
    });
    let b = Browser::new();
    let r = stack.login_bad(&b, None).await;
    r.expect_success();
    for set in r.response.header_all("set-cookie") {
        assert!(
            set.len() <= 4096,
            "each Set-Cookie fits a browser's limit: {} bytes",
            set.len()
        );
    }
    let info = stack.assert_logged_in(&b).await;
    assert_eq!(info["groups"].as_array().unwrap().len(), 150);

    assert_eq!(b.navigate(&stack.url("/big")).await.status, 200);
    let seen = stack.echo.last_to("/big").unwrap();
    assert_eq!(
        seen.header("x-forwarded-groups"),
        Some(groups.join(",").as_str())
    );
    let ours = b.cookie_names_set_by(stack.base());
    for name in seen.cookie_names() {
        assert!(
            !ours.contains(&name),
            "session chunk {name} reached upstream"
        );
    }
}

#[tokio::test]
async fn tampered_chunk_of_a_real_chunked_session_is_no_session() {
    let stack = Stack::start(StackOptions::bad().store("cookie"), |_| {}).await;
    let groups: Vec<String> = (0..150)
        .map(|i| format!("group-with-a-rather-long-name-{i:03}"))
        .collect();
    stack.bad().set_user(BadUser {
        groups,
        ..BadUser::default()
    });
    let b = Browser::new();
    stack.login_bad(&b, None).await.expect_success();
    let chunks: Vec<(String, String)> = b
        .cookies_for(stack.base())
        .into_iter()
        .filter(|(name, _)| name.starts_with("sso_session_") && !name.contains("_st_"))
        .collect();
    let names: Vec<&str> = chunks.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"sso_session_0") && names.contains(&"sso_session_1"),
        "the session is chunked: {names:?}"
    );
    let header = |chunks: &[(String, String)]| {
        chunks
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    // Control: the chunks as issued are a session.
    let intact = raw::get(
        stack.proxy.port,
        "/_sso/userinfo",
        &[("Accept", "application/json"), ("Cookie", &header(&chunks))],
    )
    .await;
    assert_eq!(intact.status, 200, "{}", intact.body);

    let second = chunks
        .iter()
        .position(|(n, _)| n == "sso_session_1")
        .unwrap();
    let mut variants: Vec<(&str, Vec<(String, String)>)> = Vec::new();
    let mut flipped = chunks.clone();
    let value = &mut flipped[second].1;
    let mid = value.len() / 2;
    let replacement = if value.as_bytes()[mid] == b'A' {
        "B"
    } else {
        "A"
    };
    value.replace_range(mid..=mid, replacement);
    variants.push(("one byte of chunk 1 flipped", flipped));
    let mut truncated = chunks.clone();
    let half = truncated[second].1.len() / 2;
    truncated[second].1.truncate(half);
    variants.push(("chunk 1 truncated", truncated));
    let mut missing = chunks.clone();
    missing.remove(second);
    variants.push(("chunk 1 missing", missing));
    let mut swapped = chunks.clone();
    let first = swapped
        .iter()
        .position(|(n, _)| n == "sso_session_0")
        .unwrap();
    let (a, b_) = (swapped[first].1.clone(), swapped[second].1.clone());
    swapped[first].1 = b_;
    swapped[second].1 = a;
    variants.push(("chunks 0 and 1 swapped", swapped));
    for (what, cookies) in variants {
        assert_refused_everywhere(&stack, what, &header(&cookies)).await;
    }
}

#[tokio::test]
async fn identity_too_large_for_the_cookie_store_gets_a_400_page_and_no_session() {
    let stack = Stack::start(StackOptions::bad().store("cookie"), |_| {}).await;
    // About 30 KB of groups: more than the cookie store's six chunks hold.
    let groups: Vec<String> = (0..1000)
        .map(|i| format!("a-group-with-a-long-name-{i:04}"))
        .collect();
    stack.bad().set_user(BadUser {
        groups,
        ..BadUser::default()
    });
    let b = Browser::new();
    let r = stack.login_bad(&b, None).await;
    assert!(r.callback_url.is_some(), "{}", r.trail_text());
    assert_eq!(r.status(), 400, "{}", r.response.body);
    let body = &r.response.body;
    assert!(
        body.contains("too large for the cookie session store"),
        "{body}"
    );
    assert!(
        body.contains("session.store"),
        "the page names the fix: {body}"
    );
    assert!(body.to_lowercase().contains("request id"), "{body}");
    stack.assert_no_secrets_in("too-large page", body);
    let names = r.response.set_cookie_names();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("sso_session") && !n.contains("_st_")),
        "no session cookie is set (only the pending login is cleared): {names:?}"
    );
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn logout_removes_a_memory_session_even_for_a_saved_cookie() {
    let stack = Stack::with_bad_op().await;
    let b = stack.browser_bad().await;
    let saved = format!("sso_session={}", stack.session_cookie(&b).unwrap());
    let page = b
        .send(
            b.client
                .post(stack.url("/_sso/logout"))
                .header("origin", stack.base()),
        )
        .await;
    assert!(
        page.status.as_u16() < 400,
        "logout: {} {}",
        page.status,
        page.body
    );
    assert_refused_everywhere(&stack, "cookie saved before logout", &saved).await;
}
