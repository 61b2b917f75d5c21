//! The full OIDC login through the real OP (oidc-provider), and what the upstream then sees:
//! identity headers, no client-sent copies of them, none of the proxy's cookies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use support::browser::Browser;
use support::raw;
use support::stack::{Stack, StackOptions, LOCAL};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// Header names (lower-case, `_` read as `-`) that only the proxy may send upstream.
fn is_identity_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('_', "-");
    n.starts_with("x-forwarded-user")
        || n.starts_with("x-forwarded-email")
        || n.starts_with("x-forwarded-preferred-username")
        || n.starts_with("x-forwarded-groups")
        || n.starts_with("x-forwarded-name")
        || n == "x-forwarded-access-token"
        || n.starts_with("x-auth-request-")
        || n == "remote-user"
        || n.starts_with("x-sso-")
}

#[tokio::test]
async fn login_forwards_identity_headers_to_upstream() {
    let stack = Stack::with_real_op().await;
    let b = Browser::new();
    let target = stack
        .login_local(&b, "alice", Some("/dashboard?tab=1"))
        .await
        .expect_success();
    assert_eq!(target.as_str(), stack.url("/dashboard?tab=1"));

    let page = b.navigate(target.as_str()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = stack
        .echo
        .last_to("/dashboard")
        .expect("upstream got the target");
    assert_eq!(seen.query.as_deref(), Some("tab=1"));
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-preferred-username"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-groups"), Some("admins,ml-team"));
    assert_eq!(seen.header("x-forwarded-name"), Some("Alice Liddell"));
}

#[tokio::test]
async fn bob_gets_his_own_identity_headers() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("bob").await;
    assert_eq!(b.navigate(&stack.url("/whoami")).await.status, 200);
    let seen = stack.echo.last_to("/whoami").unwrap();
    assert_eq!(seen.header("x-forwarded-user"), Some("bob"));
    assert_eq!(seen.header("x-forwarded-email"), Some("bob@example.com"));
    assert_eq!(seen.header("x-forwarded-groups"), Some("ml-team"));
}

#[tokio::test]
async fn client_sent_identity_headers_never_reach_upstream() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("alice").await;
    let cookie = b.cookie_header(&stack.url("/")).unwrap();
    let spoofed = [
        ("Cookie", cookie.as_str()),
        ("X-Forwarded-User", "mallory"),
        ("x-forwarded-user", "mallory2"),
        ("X-FORWARDED-USER", "mallory3"),
        ("X_Forwarded_User", "mallory4"),
        ("X-Forwarded-Email", "mallory@evil.example"),
        ("X_Forwarded_Email", "mallory@evil.example"),
        ("X-Forwarded-Groups", "admins,root"),
        ("x_forwarded_groups", "root"),
        ("X-Forwarded-Preferred-Username", "root"),
        ("X-Forwarded-Name", "Mallory"),
        ("X-Forwarded-Access-Token", "forged"),
        ("X-Auth-Request-User", "mallory"),
        ("X-Auth-Request-Email", "mallory@evil.example"),
        ("X-Auth-Request-Groups", "admins"),
        ("X_Auth_Request_Preferred_Username", "root"),
        ("Remote-User", "mallory"),
        ("remote_user", "mallory"),
        ("X-Sso-Identity", "forged.jwt.value"),
        ("X-Sso-Foo", "1"),
        ("Connection", "X-Sso-Foo, X-Hop-Secret"),
        ("X-Hop-Secret", "hop-by-hop"),
        ("Accept", "*/*"),
        ("X-Harmless", "kept"),
    ];
    let r = raw::get(stack.proxy.port, "/spoof?x=1", &spoofed).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = stack.echo.last_to("/spoof").expect("upstream reached");

    assert_eq!(seen.header_all("x-forwarded-user"), vec!["alice"]);
    assert_eq!(
        seen.header_all("x-forwarded-email"),
        vec!["alice@example.com"]
    );
    assert_eq!(
        seen.header_all("x-forwarded-groups"),
        vec!["admins,ml-team"]
    );
    assert_eq!(
        seen.header_all("x-forwarded-preferred-username"),
        vec!["alice"]
    );
    assert_eq!(seen.header_all("x-forwarded-name"), vec!["Alice Liddell"]);
    let proxy_set = [
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-forwarded-preferred-username",
        "x-forwarded-name",
    ];
    let leaked: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| is_identity_header(n) && !proxy_set.contains(&n.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "client-sent identity headers reached upstream: {leaked:?}"
    );
    assert!(
        seen.header("x-hop-secret").is_none(),
        "header named in Connection was forwarded"
    );
    assert_eq!(
        seen.header("x-harmless"),
        Some("kept"),
        "ordinary headers pass"
    );
}

#[tokio::test]
async fn identity_header_named_in_connection_still_carries_the_proxy_value() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("alice").await;
    let cookie = b.cookie_header(&stack.url("/")).unwrap();
    let r = raw::get(
        stack.proxy.port,
        "/conn",
        &[
            ("Cookie", &cookie),
            ("Accept", "*/*"),
            ("Connection", "X-Forwarded-User, X-Forwarded-Groups"),
            ("X-Forwarded-User", "mallory"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = stack.echo.last_to("/conn").unwrap();
    assert_eq!(seen.header_all("x-forwarded-user"), vec!["alice"]);
    assert_eq!(
        seen.header_all("x-forwarded-groups"),
        vec!["admins,ml-team"]
    );
}

#[tokio::test]
async fn proxy_cookies_are_removed_from_upstream_cookie_header() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("alice").await;
    let proxy_cookies = b.cookie_names_set_by(stack.base());
    assert!(
        proxy_cookies.iter().any(|n| n == "sso_session"),
        "the proxy set its session cookie: {proxy_cookies:?}"
    );
    let cookie = format!(
        "theme=dark; {}; foo=bar",
        b.cookie_header(&stack.url("/")).unwrap()
    );
    let r = raw::get(
        stack.proxy.port,
        "/cookies",
        &[("Cookie", &cookie), ("Accept", "*/*")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = stack.echo.last_to("/cookies").unwrap();
    let names = seen.cookie_names();
    assert!(
        names.contains(&"theme".to_owned()),
        "foreign cookie kept: {names:?}"
    );
    assert!(
        names.contains(&"foo".to_owned()),
        "foreign cookie kept: {names:?}"
    );
    let cookies = seen.cookies();
    assert!(cookies.contains(&("theme".into(), "dark".into())));
    for ours in &proxy_cookies {
        assert!(
            !names.contains(ours),
            "proxy cookie {ours} reached upstream: {names:?}"
        );
    }
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
}

#[tokio::test]
async fn userinfo_returns_the_session_identity() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("alice").await;
    let info = stack.assert_logged_in(&b).await;
    assert_eq!(info["user"], "alice");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["name"], "Alice Liddell");
    assert_eq!(info["given_name"], "Alice");
    assert_eq!(info["family_name"], "Liddell");
    assert_eq!(info["groups"], json!(["admins", "ml-team"]));
    assert_eq!(info["admin"], true, "alice is in groups.admins");
    assert_eq!(info["provider"], LOCAL);
    assert!(
        info.get("picture").is_none_or(|p| p.is_null()),
        "no picture claim: {info}"
    );
    let expires = info["expires_at"].as_str().expect("expires_at string");
    let rfc3339 =
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
            .unwrap();
    assert!(
        rfc3339.is_match(expires),
        "expires_at is RFC 3339: {expires}"
    );
}

#[tokio::test]
async fn userinfo_reports_bob_as_non_admin() {
    let stack = Stack::with_real_op().await;
    let b = stack.browser_as("bob").await;
    let info = stack.assert_logged_in(&b).await;
    assert_eq!(info["user"], "bob");
    assert_eq!(info["groups"], json!(["ml-team"]));
    assert_eq!(info["admin"], false);
}

#[tokio::test]
async fn session_cookie_has_secure_attributes() {
    let stack = Stack::with_real_op().await;
    let b = Browser::new();
    let r = stack.login_local(&b, "alice", None).await;
    r.expect_success();
    let set = r
        .response
        .header_all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("sso_session="))
        .expect("callback sets sso_session");
    let lower = set.to_ascii_lowercase();
    assert!(lower.contains("httponly"), "{set}");
    assert!(lower.contains("samesite=lax"), "{set}");
    assert!(lower.contains("path=/"), "{set}");
    assert!(!lower.contains("secure"), "no Secure on plain http: {set}");
    assert!(!lower.contains("domain="), "host-only cookie: {set}");
}

#[tokio::test]
async fn each_login_issues_a_new_session_id() {
    let stack = Stack::with_real_op().await;
    let b = Browser::new();
    // An attacker-planted session id must not survive the login (no fixation).
    b.jar.add_cookie_str(
        "sso_session=attacker-chosen-session-id",
        &url::Url::parse(&stack.url("/")).unwrap(),
    );
    stack.login_local(&b, "alice", None).await.expect_success();
    let first = stack.session_cookie(&b).expect("session cookie");
    assert_ne!(first, "attacker-chosen-session-id");
    stack.assert_logged_in(&b).await;

    // Logging in again (the OP session makes it form-less) gives a fresh id.
    stack.login_local(&b, "alice", None).await.expect_success();
    let second = stack.session_cookie(&b).expect("session cookie");
    assert_ne!(first, second, "a new session id at every login");
    stack.assert_logged_in(&b).await;
}

#[tokio::test]
async fn unverified_email_is_rejected_when_email_verification_is_on() {
    let stack = Stack::start(StackOptions::real(), |c| {
        c["providers"][LOCAL]["email_verification"] = json!(true);
    })
    .await;
    let b = Browser::new();
    let r = stack.login_local(&b, "carol", None).await;
    assert!(
        r.callback_url.is_some(),
        "reached the callback: {}",
        r.trail_text()
    );
    let status = r.status().as_u16();
    assert!(
        matches!(status, 400 | 401 | 403),
        "carol (email_verified=false) must be refused, got {status}: {}",
        r.response.body
    );
    stack.assert_no_session(&b).await;

    // alice's address is verified: she gets in through the same connection.
    let alice = Browser::new();
    stack
        .login_local(&alice, "alice", None)
        .await
        .expect_success();
    stack.assert_logged_in(&alice).await;
}

#[tokio::test]
async fn websocket_upgrade_passes_through_for_authenticated_users_only() {
    let stack = Stack::with_real_op().await;
    let ws_url = format!("ws://127.0.0.1:{}/ws/echo", stack.proxy.port);

    // Without a session the upgrade is refused.
    match tokio_tungstenite::connect_async(ws_url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401)
        }
        other => panic!(
            "unauthenticated upgrade must get 401, got {:?}",
            other.map(|r| r.1)
        ),
    }
    assert!(stack.echo.last_to("/ws/echo").is_none());

    let b = stack.browser_as("alice").await;
    let mut request = ws_url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "cookie",
        b.cookie_header(&stack.url("/")).unwrap().parse().unwrap(),
    );
    request
        .headers_mut()
        .insert("x-forwarded-user", "mallory".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(request)
        .await
        .expect("authenticated upgrade");
    assert_eq!(resp.status().as_u16(), 101);
    ws.send("hello through the proxy".into()).await.unwrap();
    let echoed = ws.next().await.expect("a message").expect("no error");
    assert_eq!(
        echoed.into_text().unwrap().as_str(),
        "hello through the proxy"
    );
    let seen = stack.echo.last_to("/ws/echo").unwrap();
    assert_eq!(seen.header_all("x-forwarded-user"), vec!["alice"]);
}
