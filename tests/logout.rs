//! Logout (DESIGN 4): `POST /_sso/logout` needs a same-origin `Origin`/`Sec-Fetch-Site` or the
//! CSRF token of the form that `GET /_sso/logout` shows; `GET` alone never logs out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use reqwest::Method;
use serde_json::json;
use support::browser::{Browser, Page};
use support::html;
use support::stack::{Stack, StackOptions, LOCAL};

async fn post_logout(stack: &Stack, b: &Browser, query: &str, headers: &[(&str, &str)]) -> Page {
    let mut req = b.client.post(stack.url(&format!("/_sso/logout{query}")));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    b.send(req).await
}

#[tokio::test]
async fn logout_post_with_same_origin_origin_ends_the_session() {
    let stack = Stack::with_bad_op().await;
    let b = stack.browser_bad().await;
    let origin = stack.base().to_owned();
    let page = post_logout(&stack, &b, "", &[("origin", &origin)]).await;
    assert!(
        page.status.as_u16() < 400,
        "logout accepted: {} {}",
        page.status,
        page.body
    );
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn logout_post_with_sec_fetch_site_same_origin_ends_the_session() {
    let stack = Stack::with_bad_op().await;
    let b = stack.browser_bad().await;
    let page = post_logout(&stack, &b, "", &[("sec-fetch-site", "same-origin")]).await;
    assert!(
        page.status.as_u16() < 400,
        "logout accepted: {} {}",
        page.status,
        page.body
    );
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn cross_origin_logout_without_csrf_token_keeps_the_session() {
    let stack = Stack::with_bad_op().await;
    let b = stack.browser_bad().await;
    let page = post_logout(
        &stack,
        &b,
        "",
        &[
            ("origin", "http://evil.example.com"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await;
    assert!(
        page.status.is_client_error(),
        "refused: {} {}",
        page.status,
        page.body
    );
    stack.assert_logged_in(&b).await;

    // No Origin, no fetch metadata, no token: refused as well.
    let page = post_logout(&stack, &b, "", &[]).await;
    assert!(
        page.status.is_client_error(),
        "refused: {} {}",
        page.status,
        page.body
    );
    stack.assert_logged_in(&b).await;

    // A forged token is no token.
    let page = b
        .send(
            b.client
                .post(stack.url("/_sso/logout"))
                .header("origin", "http://evil.example.com")
                .form(&[
                    ("csrf_token", "forged"),
                    ("csrf", "forged"),
                    ("_csrf", "forged"),
                ]),
        )
        .await;
    assert!(
        page.status.is_client_error(),
        "refused: {} {}",
        page.status,
        page.body
    );
    stack.assert_logged_in(&b).await;
}

#[tokio::test]
async fn get_logout_shows_a_form_and_keeps_the_session() {
    let stack = Stack::with_bad_op().await;
    let b = stack.browser_bad().await;
    let page = b.navigate(&stack.url("/_sso/logout")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let forms = html::forms(&page.body);
    assert!(
        forms.iter().any(|f| f.method == "post"),
        "GET shows a POST form: {}",
        page.body
    );
    stack.assert_logged_in(&b).await;
}

#[tokio::test]
async fn logout_form_with_its_csrf_token_ends_the_session() {
    let stack = Stack::with_bad_op().await;
    let b = stack.browser_bad().await;
    let page = b.navigate(&stack.url("/_sso/logout")).await;
    let form = html::forms(&page.body)
        .into_iter()
        .find(|f| f.method == "post")
        .expect("logout form");
    let action = page.url.join(form.action.as_deref().unwrap_or("")).unwrap();
    assert_eq!(action.path(), "/_sso/logout");
    // Posted without Origin or fetch metadata: only the form's token vouches for it.
    let posted = b
        .send(
            b.client
                .request(Method::POST, action.as_str())
                .form(&form.inputs),
        )
        .await;
    assert!(
        posted.status.as_u16() < 400,
        "logout with token: {} {}",
        posted.status,
        posted.body
    );
    stack.assert_no_session(&b).await;

    // The token belongs to that session: replaying it for a new session does nothing.
    let b2 = stack.browser_bad().await;
    let replay = b2
        .send(
            b2.client
                .request(Method::POST, action.as_str())
                .form(&form.inputs),
        )
        .await;
    assert!(
        replay.status.is_client_error(),
        "stale token refused: {}",
        replay.status
    );
    stack.assert_logged_in(&b2).await;
}

#[tokio::test]
async fn logout_return_target_is_validated() {
    let stack = Stack::with_bad_op().await;
    let origin = stack.base().to_owned();
    let b = stack.browser_bad().await;
    let page = post_logout(&stack, &b, "?rd=%2Fbye%3Fx%3D1", &[("origin", &origin)]).await;
    assert!(
        page.is_redirect(),
        "logout redirects: {} {}",
        page.status,
        page.body
    );
    assert_eq!(page.location().unwrap().as_str(), stack.url("/bye?x=1"));

    let b = stack.browser_bad().await;
    let page = post_logout(&stack, &b, "?rd=%2F%2Fevil.com", &[("origin", &origin)]).await;
    assert!(
        page.is_redirect(),
        "logout redirects: {} {}",
        page.status,
        page.body
    );
    assert_eq!(page.location().unwrap().as_str(), stack.url("/"));
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn idp_logout_redirects_to_the_end_session_endpoint() {
    let stack = Stack::start(StackOptions::real(), |c| {
        c["providers"][LOCAL]["idp_logout"] = json!(true);
    })
    .await;
    let end_session = stack.op().discovery().await["end_session_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = stack.browser_as("alice").await;
    let origin = stack.base().to_owned();
    let page = post_logout(&stack, &b, "", &[("origin", &origin)]).await;
    assert!(
        page.is_redirect(),
        "redirect to the IdP: {} {}",
        page.status,
        page.body
    );
    let location = page.location().unwrap();
    assert!(
        location.as_str().starts_with(&end_session),
        "{location} starts with {end_session}"
    );
    assert!(
        location
            .query_pairs()
            .any(|(n, v)| n == "id_token_hint" && !v.is_empty()),
        "id_token_hint sent: {location}"
    );
    stack.assert_no_session(&b).await;
    // The OP accepts it (shows its sign-out confirmation).
    let op_page = b.navigate(location.as_str()).await;
    assert!(
        op_page.status.as_u16() < 400,
        "OP end-session page: {}",
        op_page.status
    );
}
