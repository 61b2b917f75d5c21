//! Test Provider: a real login at the IdP (the real OP, and the in-process SAML IdP) that shows
//! the raw claims and the mapped identity, or the error, and never creates a session, a user
//! record or anything upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use reqwest::Method;
use serde_json::{json, Value};
use support::admin::{AdminStack, SECOND};
use support::browser::{Browser, Page};

/// Open a Test Provider URL in `browser`, sign in at the OP as `user`, and return the result
/// page (the callback's answer) plus the callback URL.
async fn run_test(
    stack: &AdminStack,
    browser: &Browser,
    url: &str,
    user: &str,
) -> (Page, url::Url) {
    let base = url::Url::parse(&stack.base_url).unwrap();
    let driven = browser
        .drive(url, user, &format!("{user}-pw"), |u| {
            u.origin() == base.origin() && u.path().starts_with("/callback_")
        })
        .await;
    let callback = driven.stopped_at.unwrap_or_else(|| {
        panic!(
            "the test login did not reach the callback:\n  {}",
            driven.trail.join("\n  ")
        )
    });
    (browser.navigate(callback.as_str()).await, callback)
}

async fn assert_nothing_created(stack: &AdminStack, browser: &Browser) {
    assert_eq!(
        browser.api_get(&stack.url("/_sso/userinfo")).await.status,
        401,
        "no session"
    );
    assert!(
        !browser
            .cookie_names_set_by(&stack.base_url)
            .iter()
            .any(|n| n == "sso_session"),
        "no session cookie was ever set"
    );
    assert_eq!(
        stack.echo.request_count(),
        0,
        "nothing reached the upstream"
    );
    let (_, users, _) = stack.get("users").await;
    assert!(
        users["users"].as_array().unwrap().is_empty(),
        "no user record: {users}"
    );
}

#[tokio::test]
async fn test_provider_shows_claims_and_mapping_without_a_session() {
    let stack = AdminStack::start(|_| {}).await;
    let (status, answer, raw) = stack
        .call(Method::POST, "connections/local/test", None)
        .await;
    assert_eq!(status, 200, "{raw}");
    let url = answer["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/_sso/admin/test?ticket=", stack.public_url)),
        "{url}"
    );

    let browser = Browser::new();
    let (page, callback) = run_test(&stack, &browser, &url, "alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for expected in [
        "id=\"mapped-user\">alice<",
        "id=\"mapped-email\">alice@example.com<",
        "id=\"mapped-name\">Alice Liddell<",
        "id=\"mapped-groups\">admins, ml-team<",
        "id=\"mapped-admin\">yes<",
        "The login rules would admit this user",
        "\"email_verified\": true",
        "No session was created",
    ] {
        assert!(
            page.body.contains(expected),
            "result page lacks {expected}: {}",
            page.body
        );
    }
    assert!(!page.body.contains("eyJ"), "no token on the page");
    stack.assert_no_secrets("test result page", &page.body);
    assert_nothing_created(&stack, &browser).await;

    // The callback cannot be replayed into a real login, and the ticket is single-use.
    let again = browser.navigate(callback.as_str()).await;
    assert_eq!(again.status, 400);
    let reused = browser.navigate(&url).await;
    assert_eq!(reused.status, 400);
    assert!(reused.body.contains("expired or was already used"));
    assert_nothing_created(&stack, &browser).await;
    let (_, audit, _) = stack.get("audit").await;
    assert_eq!(audit["entries"][0]["action"], "connection.test");
}

#[tokio::test]
async fn test_provider_runs_unsaved_settings_and_shows_refusals_and_errors() {
    let stack = AdminStack::start(|_| {}).await;
    // A new connection, not saved: the test uses the submitted settings.
    let mut draft = stack.second_settings("Draft OP");
    draft["email_verification"] = json!(true);
    let (status, answer, raw) = stack
        .call(Method::POST, "connections/test", Some(draft.clone()))
        .await;
    assert_eq!(status, 200, "{raw}");
    let browser = Browser::new();
    let (page, _) = run_test(&stack, &browser, answer["url"].as_str().unwrap(), "carol").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("id=\"mapped-user\">carol<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("would refuse this user"),
        "carol's e-mail is not verified: {}",
        page.body
    );
    assert_eq!(
        stack.get(&format!("connections/{SECOND}")).await.0,
        404,
        "a test saves nothing"
    );
    assert_nothing_created(&stack, &browser).await;

    // Invalid settings: the problems, as for a save.
    let (status, answer, _) = stack
        .call(
            Method::POST,
            "connections/test",
            Some(json!({"id": "x", "client_id": "c"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["problems"][0]["field"], "issuer");

    // A wrong client secret: the token endpoint's refusal is the result.
    draft["client_secret"] = json!("wrong-secret");
    let (status, answer, _) = stack
        .call(Method::POST, "connections/test", Some(draft))
        .await;
    assert_eq!(status, 200);
    let browser = Browser::new();
    let (page, _) = run_test(&stack, &browser, answer["url"].as_str().unwrap(), "alice").await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("id=\"test-error\""), "{}", page.body);
    assert!(page.body.contains("token endpoint"), "{}", page.body);
    assert_nothing_created(&stack, &browser).await;

    // Unknown connections.
    assert_eq!(
        stack
            .call(Method::POST, "connections/nope/test", None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn test_provider_for_a_stored_connection_keeps_its_secret() {
    let stack = AdminStack::start(|_| {}).await;
    stack.create_second("Second OP").await;
    // Edited (unsaved) settings without the secret: the stored secret is used.
    let mut edited = stack.second_settings("Second OP (edited)");
    edited.as_object_mut().unwrap().remove("client_secret");
    let (status, answer, raw) = stack
        .call(Method::POST, "connections/second/test", Some(edited))
        .await;
    assert_eq!(status, 200, "{raw}");
    let browser = Browser::new();
    let (page, _) = run_test(&stack, &browser, answer["url"].as_str().unwrap(), "bob").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Second OP (edited)") && page.body.contains("id=\"mapped-admin\">no<")
    );
    let (_, saved, _) = stack.get("connections/second").await;
    assert_eq!(
        saved["display_name"], "Second OP",
        "testing changes nothing"
    );
    assert_nothing_created(&stack, &browser).await;
}

#[tokio::test]
async fn test_provider_for_saml_verifies_the_response_without_a_session() {
    use support::saml_bad_idp::{build, encode, BadIdp, ResponseSpec};
    let stack = AdminStack::start(|_| {}).await;
    let idp = BadIdp::new();
    let body = json!({"id": "corp", "protocol": "saml", "display_name": "Corp",
                      "idp_metadata": idp.metadata(true), "groups": {"enabled": true, "admins": ["admins"]}});
    let (status, _, raw) = stack.call(Method::POST, "connections", Some(body)).await;
    assert_eq!(status, 201, "{raw}");
    let (_, answer, _) = stack
        .call(Method::POST, "connections/corp/test", None)
        .await;
    let browser = Browser::new();
    let start = browser.navigate(answer["url"].as_str().unwrap()).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.location().unwrap();
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let request = sso_proxy::providers::saml::request::inflate(&param("SAMLRequest")).unwrap();
    let doc = roxmltree::Document::parse(&request).unwrap();
    let request_id = doc.root_element().attribute("ID").unwrap().to_owned();
    let entity_id = format!("{}/_sso/saml/corp/metadata", stack.public_url);
    let acs = format!("{}/callback_corp", stack.public_url);
    let spec = ResponseSpec::valid(Some(&request_id), &entity_id, &acs, "sam");
    let response = encode(&build(&spec, &idp.keys.key));
    let post = |relay: String, response: String| {
        let browser = &browser;
        let acs = acs.clone();
        async move {
            let form = [("SAMLResponse", response), ("RelayState", relay)];
            browser
                .send(
                    browser
                        .client
                        .post(acs)
                        .header("origin", "null")
                        .form(&form),
                )
                .await
        }
    };
    let page = post(param("RelayState"), response.clone()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for expected in [
        "id=\"mapped-user\">sam<",
        "id=\"mapped-email\">sam@example.com<",
        "id=\"mapped-admin\">yes<",
        "\"nameid\"",
    ] {
        assert!(
            page.body.contains(expected),
            "lacks {expected}: {}",
            page.body
        );
    }
    assert_nothing_created(&stack, &browser).await;
    // Replayed: not a test any more, and refused like any replay.
    let replay = post(param("RelayState"), response).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_nothing_created(&stack, &browser).await;
}

#[tokio::test]
async fn test_provider_needs_admin() {
    let stack = AdminStack::start(|_| {}).await;
    let bob = stack.browser_as("bob").await;
    let origin = [("origin", stack.public_url.as_str())];
    let page = stack
        .session_call(
            &bob,
            Method::POST,
            "connections/local/test",
            Some(Value::Null),
            &origin,
        )
        .await;
    assert_eq!(page.status, 403);
    let page = Browser::new()
        .navigate(&stack.url("/_sso/admin/test?ticket=forged"))
        .await;
    assert_eq!(page.status, 400);
}
