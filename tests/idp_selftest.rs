//! Self-test of the real OP (tests/idp/op.mjs) without the proxy: discovery, the scripted login
//! form, the users' claims in the ID token (groups included) and the PKCE modes it supports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use support::browser::Browser;
use support::op::{spawn_op, Op, OpClient};
use support::util::{b64url, jwt_header, random_string};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:9/cb";

async fn op_with_client() -> (Op, OpClient) {
    let client = OpClient::new("selftest", &random_string(32), REDIRECT);
    let op = spawn_op(std::slice::from_ref(&client)).await;
    (op, client)
}

fn authorize_url(op: &Op, client: &OpClient, pkce: Option<(&str, &str)>) -> String {
    let mut url = Url::parse(&format!("{}/auth", op.issuer)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid profile email")
            .append_pair("state", "state-1")
            .append_pair("nonce", "nonce-1");
        if let Some((challenge, method)) = pkce {
            q.append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", method);
        }
    }
    url.into()
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Drive the OP's login for `user`; returns the authorization response URL (not followed).
async fn login(
    op: &Op,
    client: &OpClient,
    user: &str,
    password: &str,
    pkce: Option<(&str, &str)>,
) -> Option<Url> {
    let b = Browser::new();
    let driven = b
        .drive(&authorize_url(op, client, pkce), user, password, |u| {
            u.as_str().starts_with(REDIRECT)
        })
        .await;
    driven.stopped_at
}

async fn token(op: &Op, client: &OpClient, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let b = Browser::new();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let page = b
        .send(
            b.client
                .post(format!("{}/token", op.issuer))
                .basic_auth(&client.client_id, Some(&client.client_secret))
                .form(&form),
        )
        .await;
    (page.status.as_u16(), page.json())
}

async fn verified_id_token(op: &Op, client: &OpClient, id_token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{}/jwks", op.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwt_header(id_token)["kid"].as_str().unwrap().to_owned();
    let key = DecodingKey::from_jwk(jwks.find(&kid).expect("kid in JWKS")).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[&op.issuer]);
    v.set_audience(&[&client.client_id]);
    jsonwebtoken::decode::<Value>(id_token, &key, &v)
        .unwrap()
        .claims
}

async fn full_login(user: &str) -> (Value, Value) {
    let (op, client) = op_with_client().await;
    let verifier = random_string(64);
    let challenge = b64url(&<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let back = login(
        &op,
        &client,
        user,
        &format!("{user}-pw"),
        Some((&challenge, "S256")),
    )
    .await
    .expect("redirected back to the client");
    assert_eq!(param(&back, "state").as_deref(), Some("state-1"));
    assert_eq!(param(&back, "iss").as_deref(), Some(op.issuer.as_str()));
    let code = param(&back, "code").expect("code");
    let (status, body) = token(&op, &client, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{body}");
    let claims = verified_id_token(&op, &client, body["id_token"].as_str().unwrap()).await;
    let b = Browser::new();
    let userinfo = b
        .send(
            b.client
                .get(format!("{}/me", op.issuer))
                .bearer_auth(body["access_token"].as_str().unwrap()),
        )
        .await
        .json();
    (claims, userinfo)
}

#[tokio::test]
async fn op_discovery_names_issuer_endpoints_and_claims() {
    let (op, _) = op_with_client().await;
    let d = op.discovery().await;
    assert_eq!(d["issuer"], op.issuer.as_str());
    assert!(!op.issuer.ends_with('/'));
    assert_eq!(d["authorization_endpoint"], format!("{}/auth", op.issuer));
    assert_eq!(
        d["end_session_endpoint"],
        format!("{}/session/end", op.issuer)
    );
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert!(d["claims_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("groups")));
    assert!(d["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("RS256")));
}

#[tokio::test]
async fn alice_gets_an_id_token_with_profile_and_groups() {
    let (claims, userinfo) = full_login("alice").await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["family_name"], "Liddell");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["groups"], json!(["admins", "ml-team"]));
    assert_eq!(userinfo["sub"], "alice");
    assert_eq!(userinfo["groups"], json!(["admins", "ml-team"]));
}

#[tokio::test]
async fn bob_and_carol_have_their_claims() {
    let (bob, _) = full_login("bob").await;
    assert_eq!(bob["sub"], "bob");
    assert_eq!(bob["groups"], json!(["ml-team"]));
    assert_eq!(bob["email_verified"], true);
    let (carol, _) = full_login("carol").await;
    assert_eq!(carol["sub"], "carol");
    assert_eq!(carol["email_verified"], false);
    assert_eq!(carol["groups"], json!([]));
}

#[tokio::test]
async fn op_rejects_a_wrong_password() {
    let (op, client) = op_with_client().await;
    let b = Browser::new();
    let driven = b
        .drive(&authorize_url(&op, &client, None), "alice", "bob-pw", |u| {
            u.as_str().starts_with(REDIRECT)
        })
        .await;
    assert!(
        driven.stopped_at.is_none(),
        "wrong password must not authenticate"
    );
    let last = driven.last.unwrap();
    assert!(
        last.body.contains("Invalid login or password"),
        "{}",
        last.body
    );
    let unknown = login(&op, &client, "mallory", "mallory-pw", None).await;
    assert!(unknown.is_none(), "unknown user must not authenticate");
}

#[tokio::test]
async fn op_accepts_logins_without_pkce_and_checks_s256() {
    let (op, client) = op_with_client().await;
    let back = login(&op, &client, "alice", "alice-pw", None)
        .await
        .unwrap();
    let (status, body) = token(&op, &client, &param(&back, "code").unwrap(), None).await;
    assert_eq!(status, 200, "no PKCE is accepted: {body}");

    let verifier = random_string(64);
    let challenge = b64url(&<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let back = login(
        &op,
        &client,
        "alice",
        "alice-pw",
        Some((&challenge, "S256")),
    )
    .await
    .unwrap();
    let (status, _) = token(
        &op,
        &client,
        &param(&back, "code").unwrap(),
        Some(&random_string(64)),
    )
    .await;
    assert_eq!(status, 400, "a wrong S256 verifier is refused");
}

/// oidc-provider 9 implements only S256: `plain` is refused at the authorization endpoint.
/// The proxy's `plain` mode is therefore tested against the BadOp.
#[tokio::test]
async fn op_refuses_plain_pkce() {
    let (op, client) = op_with_client().await;
    let b = Browser::new();
    let page = b
        .navigate(&authorize_url(
            &op,
            &client,
            Some((&random_string(50), "plain")),
        ))
        .await;
    let back = page.location().expect("redirect back with an error");
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));
}
