use serde_json::json;

use super::*;

const NOW: u64 = 1_800_000_000;

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn good() -> Value {
    json!({"iss": "https://op", "sub": "alice", "aud": "client", "exp": NOW + 300, "iat": NOW, "nonce": "n1"})
}

fn want() -> Expectations<'static> {
    Expectations {
        issuer: "https://op",
        client_id: "client",
        nonce: Some("n1"),
        check_audience: true,
        skew_secs: 60,
        now: NOW,
    }
}

fn with(key: &str, value: Value) -> Map<String, Value> {
    let mut c = claims(good());
    c.insert(key.into(), value);
    c
}

#[test]
fn accepts_a_good_token() {
    assert_eq!(check_claims(&claims(good()), &want()), Ok(()));
}

#[test]
fn rejects_each_broken_claim() {
    let cases = [
        (with("iss", json!("https://op/")), "WrongIssuer"),
        (with("aud", json!("other")), "WrongAudience"),
        (with("aud", json!(["client", "other"])), "AzpMissing"),
        (with("azp", json!("other")), "AzpMismatch"),
        (with("exp", json!(NOW - 61)), "Expired"),
        (with("nbf", json!(NOW + 61)), "NotYetValid"),
        (with("iat", json!(NOW + 61)), "IssuedInFuture"),
        (with("nonce", json!("n2")), "NonceMismatch"),
        (with("sub", json!("")), "MissingClaim"),
    ];
    for (c, expected) in cases {
        let err = check_claims(&c, &want()).unwrap_err();
        assert!(
            format!("{err:?}").starts_with(expected),
            "{err:?} vs {expected}"
        );
    }
}

#[test]
fn skew_is_honoured() {
    assert_eq!(check_claims(&with("exp", json!(NOW - 59)), &want()), Ok(()));
    assert_eq!(check_claims(&with("nbf", json!(NOW + 59)), &want()), Ok(()));
}

#[test]
fn several_audiences_with_matching_azp_pass() {
    let mut c = with("aud", json!(["client", "other"]));
    c.insert("azp".into(), json!("client"));
    assert_eq!(check_claims(&c, &want()), Ok(()));
}

#[test]
fn missing_nonce_fails_when_one_was_sent() {
    let mut c = claims(good());
    c.remove("nonce");
    assert_eq!(check_claims(&c, &want()), Err(TokenError::NonceMismatch));
}

#[test]
fn header_enforces_allowlist() {
    let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let allowed = [Algorithm::RS256, Algorithm::ES256];
    let none = format!("{}.{}.", enc(json!({"alg": "none"})), enc(good()));
    assert_eq!(
        header(&none, &allowed).unwrap_err(),
        TokenError::AlgNotAllowed("none".into())
    );
    let hs = format!("{}.{}.x", enc(json!({"alg": "HS256"})), enc(good()));
    assert_eq!(
        header(&hs, &allowed).unwrap_err(),
        TokenError::AlgNotAllowed("HS256".into())
    );
    let rs = format!(
        "{}.{}.x",
        enc(json!({"alg": "RS256", "kid": "k1", "jku": "https://evil"})),
        enc(good())
    );
    let h = header(&rs, &allowed).unwrap();
    assert_eq!((h.alg, h.kid.as_deref()), (Algorithm::RS256, Some("k1")));
    assert_eq!(
        header("garbage", &allowed).unwrap_err(),
        TokenError::Malformed
    );
}
