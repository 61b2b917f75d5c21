//! Self-tests of the harness pieces that do not need the proxy: the echo upstream and the BadOp.
//! They prove that the negative-case OP really produces each defect it claims to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use futures_util::{SinkExt as _, StreamExt as _};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use support::bad_op::{BadOp, Mode};
use support::browser::Browser;
use support::echo::EchoUpstream;
use support::raw;
use support::util::{b64url, jwt_header, jwt_payload, now, random_string};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:9/cb";

#[tokio::test]
async fn echo_upstream_reports_method_path_query_headers_and_body() {
    let echo = EchoUpstream::start();
    let b = Browser::new();
    let page = b
        .send(
            b.client
                .post(format!("{}/some/path?x=1&y=%2F", echo.url))
                .header("X-Test", "one")
                .body("hello"),
        )
        .await;
    assert_eq!(page.status, 200);
    let j = page.json();
    assert_eq!(j["method"], "POST");
    assert_eq!(j["path"], "/some/path");
    assert_eq!(j["query"], "x=1&y=%2F");
    assert_eq!(j["body"], "hello");
    assert!(j["headers"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(["x-test", "one"])));
    let rec = echo.last();
    assert_eq!(rec.header("x-test"), Some("one"));
    assert_eq!(echo.request_count(), 1);
}

#[tokio::test]
async fn echo_upstream_keeps_raw_paths_duplicate_headers_and_underscores() {
    let echo = EchoUpstream::start();
    let r = raw::get(
        echo.port,
        "/a/../b%2Fc",
        &[
            ("X-Dup", "1"),
            ("X-Dup", "2"),
            ("X_Under", "u"),
            ("Cookie", "a=1; b=2"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rec = echo.last();
    assert_eq!(rec.path, "/a/../b%2Fc");
    assert_eq!(rec.header_all("x-dup"), vec!["1", "2"]);
    assert_eq!(rec.header("x_under"), Some("u"));
    assert_eq!(rec.cookie_names(), vec!["a", "b"]);
    assert_eq!(r.json()["path"], "/a/../b%2Fc");
}

#[tokio::test]
async fn echo_upstream_echoes_websocket_messages() {
    let echo = EchoUpstream::start();
    let (mut ws, resp) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", echo.port))
            .await
            .expect("websocket handshake");
    assert_eq!(resp.status().as_u16(), 101);
    ws.send("ping-1".into()).await.unwrap();
    let msg = ws.next().await.unwrap().unwrap();
    assert_eq!(msg.into_text().unwrap().as_str(), "ping-1");
    assert_eq!(echo.last().path, "/ws");
}

/// One authorization code at the BadOp: returns the authorization response URL.
async fn authorize(bad: &BadOp, b: &Browser, challenge: Option<(&str, &str)>) -> Url {
    let mut url = Url::parse(&format!("{}/authorize", bad.issuer)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &bad.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid profile email")
            .append_pair("state", "st-1")
            .append_pair("nonce", "n-1");
        if let Some((c, m)) = challenge {
            q.append_pair("code_challenge", c)
                .append_pair("code_challenge_method", m);
        }
    }
    let page = b.navigate(url.as_str()).await;
    assert_eq!(page.status, 302, "{}", page.body);
    page.location().unwrap()
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

async fn exchange(bad: &BadOp, b: &Browser, code: &str, verifier: Option<&str>) -> (u16, Value) {
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
                .post(format!("{}/token", bad.issuer))
                .basic_auth(&bad.client_id, Some(&bad.client_secret))
                .form(&form),
        )
        .await;
    (page.status.as_u16(), page.json())
}

/// Run a full code flow in the current mode; returns (id_token, access_token).
async fn tokens(bad: &BadOp) -> (String, String) {
    let b = Browser::new();
    let verifier = random_string(50);
    let challenge = b64url(&<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let back = authorize(bad, &b, Some((&challenge, "S256"))).await;
    let code = query(&back, "code").expect("code");
    let (status, body) = exchange(bad, &b, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{body}");
    (
        body["id_token"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

fn decoding_key_for(jwks: &Value, kid: &str) -> Option<DecodingKey> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    set.find(kid).map(|jwk| DecodingKey::from_jwk(jwk).unwrap())
}

fn strict_validation(bad: &BadOp) -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[&bad.issuer]);
    v.set_audience(&[&bad.client_id]);
    v.leeway = 60;
    v
}

fn verify(bad: &BadOp, jwks: &Value, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let kid = jwt_header(token)["kid"].as_str().unwrap_or("").to_owned();
    let key = decoding_key_for(jwks, &kid).ok_or_else(|| {
        jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)
    })?;
    jsonwebtoken::decode::<Value>(token, &key, &strict_validation(bad)).map(|d| d.claims)
}

#[tokio::test]
async fn bad_op_good_mode_issues_a_token_that_verifies() {
    let bad = BadOp::start("c1", &random_string(24));
    let (id_token, access_token) = tokens(&bad).await;
    let claims = verify(&bad, &bad.jwks(), &id_token).expect("good token verifies");
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["sub"], "dave");
    assert_eq!(claims["groups"], serde_json::json!(["ml-team", "qa"]));
    assert_eq!(jwt_header(&id_token)["kid"], bad.primary_kid().as_str());
    let b = Browser::new();
    let info = b
        .send(
            b.client
                .get(format!("{}/userinfo", bad.issuer))
                .bearer_auth(&access_token),
        )
        .await
        .json();
    assert_eq!(info["sub"], "dave");
    assert_eq!(bad.token_auth_methods(), vec!["client_secret_basic"]);
}

#[tokio::test]
async fn bad_op_modes_each_break_their_rule() {
    let bad = BadOp::start("c1", &random_string(24));
    let t = now();

    let check = |mode: Mode, token: &str, jwks: &Value| {
        let claims = jwt_payload(token);
        let header = jwt_header(token);
        let verified = verify(&bad, jwks, token);
        match mode {
            Mode::BadSignature => {
                assert_eq!(header["kid"], bad.primary_kid().as_str());
                let err = verified.unwrap_err();
                assert!(
                    matches!(
                        err.kind(),
                        jsonwebtoken::errors::ErrorKind::InvalidSignature
                    ),
                    "{err:?}"
                );
            }
            Mode::AlgNone => {
                assert_eq!(header["alg"], "none");
                assert!(token.ends_with('.'));
            }
            Mode::WrongIss => {
                assert_eq!(claims["iss"], "https://evil.example.com");
                assert!(verified.is_err());
            }
            Mode::IssTrailingSlash => {
                assert_eq!(claims["iss"], format!("{}/", bad.issuer));
                assert!(verified.is_err());
            }
            Mode::IssWithoutScheme => {
                assert_eq!(claims["iss"], bad.issuer.split_once("://").unwrap().1);
                assert!(verified.is_err());
            }
            Mode::WrongAud => {
                assert_eq!(claims["aud"], "another-client");
                assert!(verified.is_err());
            }
            Mode::AzpMismatch => {
                assert_eq!(claims["azp"], "another-client");
                verified.expect("only azp is wrong");
            }
            Mode::MultiAudNoAzp => {
                assert_eq!(claims["aud"].as_array().unwrap().len(), 2);
                assert!(claims.get("azp").is_none());
                verified.expect("only azp is missing");
            }
            Mode::MultiAudWithAzp => {
                assert_eq!(claims["azp"], "c1");
                verified.expect("valid");
            }
            Mode::Expired => {
                assert!(claims["exp"].as_i64().unwrap() < t - 300);
                assert!(verified.is_err());
            }
            Mode::NotYetValid => {
                assert!(claims["nbf"].as_i64().unwrap() > t + 300);
            }
            Mode::WrongNonce => {
                assert_eq!(claims["nonce"], "not-the-nonce");
                verified.expect("only the nonce is wrong");
            }
            Mode::MissingNonce => {
                assert!(claims.get("nonce").is_none());
                verified.expect("only the nonce is missing");
            }
            Mode::UnknownKid => {
                assert!(!bad
                    .served_kids()
                    .contains(&header["kid"].as_str().unwrap().to_owned()));
            }
            Mode::HmacWithPublicKey => {
                assert_eq!(header["alg"], "HS256");
                assert_eq!(header["kid"], bad.primary_kid().as_str());
            }
            Mode::EmbeddedJwk => {
                let jwk: jsonwebtoken::jwk::Jwk =
                    serde_json::from_value(header["jwk"].clone()).unwrap();
                let key = DecodingKey::from_jwk(&jwk).unwrap();
                jsonwebtoken::decode::<Value>(token, &key, &strict_validation(&bad))
                    .expect("signed by the embedded key");
                assert!(verified.is_err(), "not verifiable with the OP's JWKS");
            }
            Mode::JkuHeader => {
                assert_eq!(header["jku"], format!("{}/attacker-jwks", bad.issuer));
                assert!(verified.is_err(), "not verifiable with the OP's JWKS");
            }
            Mode::UserinfoSubMismatch | Mode::Good => {
                verified.expect("valid");
            }
            other => panic!("mode {other:?} not covered here"),
        }
    };

    for mode in [
        Mode::Good,
        Mode::BadSignature,
        Mode::AlgNone,
        Mode::WrongIss,
        Mode::IssTrailingSlash,
        Mode::IssWithoutScheme,
        Mode::WrongAud,
        Mode::AzpMismatch,
        Mode::MultiAudNoAzp,
        Mode::MultiAudWithAzp,
        Mode::Expired,
        Mode::NotYetValid,
        Mode::WrongNonce,
        Mode::MissingNonce,
        Mode::UnknownKid,
        Mode::HmacWithPublicKey,
        Mode::EmbeddedJwk,
        Mode::JkuHeader,
        Mode::UserinfoSubMismatch,
    ] {
        bad.set_mode(mode);
        let jwks = bad.jwks();
        let (id_token, _) = tokens(&bad).await;
        check(mode, &id_token, &jwks);
    }
}

#[tokio::test]
async fn bad_op_rotation_serves_the_new_key_only_after_issuing() {
    let bad = BadOp::start("c1", &random_string(24));
    bad.set_mode(Mode::UnknownKidThenRotate);
    let before = bad.jwks();
    let fetches = bad.jwks_fetches();
    let (id_token, _) = tokens(&bad).await;
    let kid = jwt_header(&id_token)["kid"].as_str().unwrap().to_owned();
    assert!(
        decoding_key_for(&before, &kid).is_none(),
        "new kid unknown before the token"
    );
    let b = Browser::new();
    let after = b.api_get(&format!("{}/jwks", bad.issuer)).await.json();
    assert_eq!(bad.jwks_fetches(), fetches + 1, "JWKS fetches are counted");
    verify(&bad, &after, &id_token).expect("verifies with the refetched JWKS");
    assert!(
        bad.served_kids().contains(&bad.primary_kid()),
        "old key still served"
    );
}

#[tokio::test]
async fn bad_op_userinfo_sub_mismatch_and_authorize_error_modes() {
    let bad = BadOp::start("c1", &random_string(24));
    bad.set_mode(Mode::UserinfoSubMismatch);
    let (id_token, access_token) = tokens(&bad).await;
    assert_eq!(jwt_payload(&id_token)["sub"], "dave");
    let b = Browser::new();
    let info = b
        .send(
            b.client
                .get(format!("{}/userinfo", bad.issuer))
                .bearer_auth(&access_token),
        )
        .await
        .json();
    assert_eq!(info["sub"], "mallory");

    bad.set_mode(Mode::IdpError);
    let back = authorize(&bad, &b, None).await;
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("st-1"));
    assert!(query(&back, "code").is_none());

    bad.set_mode(Mode::WrongIssResponseParam);
    let back = authorize(&bad, &b, None).await;
    assert_eq!(
        query(&back, "iss").as_deref(),
        Some("https://evil.example.com")
    );
    assert!(query(&back, "code").is_some());

    bad.set_mode(Mode::Good);
    let back = authorize(&bad, &b, None).await;
    assert_eq!(query(&back, "iss").as_deref(), Some(bad.issuer.as_str()));
    assert!(back.as_str().starts_with(REDIRECT));
}

#[tokio::test]
async fn bad_op_enforces_client_auth_single_use_codes_and_pkce() {
    let bad = BadOp::start("c1", &random_string(24));
    let b = Browser::new();

    // Wrong client secret.
    let code = query(&authorize(&bad, &b, None).await, "code").unwrap();
    let page = b
        .send(
            b.client
                .post(format!("{}/token", bad.issuer))
                .basic_auth("c1", Some("wrong"))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                ]),
        )
        .await;
    assert_eq!(page.status, 401);

    // client_secret_post works; the code is single-use.
    let code = query(&authorize(&bad, &b, None).await, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "c1"),
        ("client_secret", bad.client_secret.as_str()),
    ];
    let url = format!("{}/token", bad.issuer);
    assert_eq!(b.send(b.client.post(&url).form(&form)).await.status, 200);
    assert_eq!(b.send(b.client.post(&url).form(&form)).await.status, 400);
    assert!(bad
        .token_auth_methods()
        .contains(&"client_secret_post".to_owned()));

    // S256: a wrong verifier fails, the right one works.
    let verifier = random_string(50);
    let challenge = b64url(&<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let code = query(
        &authorize(&bad, &b, Some((&challenge, "S256"))).await,
        "code",
    )
    .unwrap();
    assert_eq!(
        exchange(
            &bad,
            &b,
            &code,
            Some("wrong-verifier-wrong-verifier-wrong-verifier")
        )
        .await
        .0,
        400
    );
    let code = query(
        &authorize(&bad, &b, Some((&challenge, "S256"))).await,
        "code",
    )
    .unwrap();
    assert_eq!(
        exchange(&bad, &b, &code, None).await.0,
        400,
        "verifier required"
    );
    let code = query(
        &authorize(&bad, &b, Some((&challenge, "S256"))).await,
        "code",
    )
    .unwrap();
    assert_eq!(exchange(&bad, &b, &code, Some(&verifier)).await.0, 200);

    // plain: verifier == challenge.
    let code = query(
        &authorize(&bad, &b, Some((&verifier, "plain"))).await,
        "code",
    )
    .unwrap();
    assert_eq!(exchange(&bad, &b, &code, Some(&challenge)).await.0, 400);
    let code = query(
        &authorize(&bad, &b, Some((&verifier, "plain"))).await,
        "code",
    )
    .unwrap();
    assert_eq!(exchange(&bad, &b, &code, Some(&verifier)).await.0, 200);
    assert_eq!(
        bad.last_authorize_param("code_challenge_method").as_deref(),
        Some("plain")
    );
    assert!(!bad.token_errors().is_empty());
}
