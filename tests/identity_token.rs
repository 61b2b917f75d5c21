//! `X-Sso-Identity`: the upstream gets a short-lived ES256 JWT of the identity that verifies
//! with `/_sso/jwks.json`, and a client-sent copy never passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use support::stack::{Stack, StackOptions};

#[tokio::test]
async fn upstream_gets_a_signed_identity_token_that_verifies_with_the_jwks() {
    let stack = Stack::start(StackOptions::bad(), |config| {
        config["headers"] = serde_json::json!({ "identity_token": true });
    })
    .await;
    let browser = stack.browser_bad().await;
    let cookie = browser.cookie_header(&stack.url("/")).unwrap();
    let client = reqwest::Client::new();
    let resp = client
        .get(stack.url("/signed"))
        .header("cookie", cookie)
        .header("x-sso-identity", "forged.token.value")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = stack.echo.last_to("/signed").unwrap();
    let tokens = seen.header_all("x-sso-identity");
    assert_eq!(tokens.len(), 1, "exactly one identity token: {tokens:?}");
    let token = tokens[0];
    assert_ne!(token, "forged.token.value");

    let jwks: Value = reqwest::get(stack.url("/_sso/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[stack.base().trim_end_matches('/')]);
    validation.validate_aud = false;
    let data =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
            .expect("identity token verifies with the published key");
    assert_eq!(data.claims["sub"], seen.header("x-forwarded-user").unwrap());
    assert_eq!(data.claims["provider"], "bad");
    let lifetime = data.claims["exp"].as_u64().unwrap() - data.claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 60);

    // Without a session (skip_auth-less path) nothing is signed and the forged copy is gone.
    let anonymous = client
        .get(stack.url("/_sso/healthz"))
        .header("x-sso-identity", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 200);
}

#[tokio::test]
async fn identity_token_is_off_by_default() {
    let stack = Stack::with_bad_op().await;
    let browser = stack.browser_bad().await;
    let page = browser.navigate(&stack.url("/plain")).await;
    assert_eq!(page.status.as_u16(), 200);
    let seen = stack.echo.last_to("/plain").unwrap();
    assert!(seen.header("x-sso-identity").is_none());
}
