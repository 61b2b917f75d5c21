//! SAML negative cases (DESIGN section 6), each built from a validly signed response with one
//! thing broken, signed at test time by the misbehaving IdP: every one is refused with an error
//! page naming the reason, and no session is created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{json, Value};
use support::browser::{Browser, Page};
use support::saml_bad_idp::{
    self as bad, build, encode, remove_first_signature, signed_assertion, Alg, BadIdp, KeyPair,
    ResponseSpec,
};
use support::saml_stack::{saml_provider, Begun, SamlStack};

const ID: &str = "bad";

async fn stack(idp: &BadIdp, tweak: impl FnOnce(&mut Value)) -> SamlStack {
    let mut provider = saml_provider("Bad IdP", &idp.metadata(true));
    tweak(&mut provider);
    SamlStack::start(0, json!({ ID: provider }), |_| {}).await
}

/// A valid spec answering `begun` for user `bob`.
fn spec(stack: &SamlStack, begun: &Begun) -> ResponseSpec {
    ResponseSpec::valid(
        Some(&begun.request_id),
        &stack.entity_id(ID),
        &stack.acs(ID),
        "bob",
    )
}

/// Begins a login, lets `make` write the response (XML), posts it; returns the ACS page.
async fn attempt(
    idp: &BadIdp,
    tweak: impl FnOnce(&mut Value),
    make: impl FnOnce(&SamlStack, &Begun) -> String,
) -> (SamlStack, Browser, Page) {
    let stack = stack(idp, tweak).await;
    let browser = Browser::new();
    let begun = stack.begin(&browser, ID).await;
    let xml = make(&stack, &begun);
    let page = stack
        .post_acs(&browser, ID, &encode(&xml), Some(&begun.relay_state))
        .await;
    (stack, browser, page)
}

async fn assert_refused(
    stack: &SamlStack,
    browser: &Browser,
    page: &Page,
    status: u16,
    reason: &str,
) {
    assert_eq!(page.status.as_u16(), status, "{}", page.body);
    assert!(
        page.body.contains(reason),
        "page does not say {reason:?}:\n{}",
        page.body
    );
    assert!(
        !page
            .set_cookie_names()
            .iter()
            // The used pending-login cookie (`sso_session_st_…`) is cleared; nothing else.
            .any(|n| n.contains("sso_session") && !n.contains("_st_")),
        "a session cookie was set"
    );
    assert!(!stack.has_session(browser).await, "a session exists");
    assert!(stack.echo.requests().is_empty(), "the upstream was reached");
}

#[tokio::test]
async fn saml_valid_response_from_the_test_idp_is_accepted() {
    let idp = BadIdp::new();
    let (stack, browser, page) =
        attempt(&idp, |_| {}, |s, b| build(&spec(s, b), &idp.keys.key)).await;
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);
    assert_eq!(page.header("location"), Some("/after"));
    let info = browser.api_get(&stack.url("/_sso/userinfo")).await.json();
    assert_eq!(info["user"], json!("bob"));
    assert_eq!(info["email"], json!("bob@example.com"));
    assert_eq!(info["admin"], json!(true));
}

#[tokio::test]
async fn saml_rejects_an_unsigned_response() {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| {
            let mut spec = spec(s, b);
            spec.sign_assertion = false;
            build(&spec, &idp.keys.key)
        },
    )
    .await;
    assert_refused(&stack, &browser, &page, 403, "is not signed").await;
}

#[tokio::test]
async fn saml_rejects_a_response_whose_signature_was_removed() {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| remove_first_signature(&build(&spec(s, b), &idp.keys.key)),
    )
    .await;
    assert_refused(&stack, &browser, &page, 403, "is not signed").await;
}

#[tokio::test]
async fn saml_rejects_a_tampered_signed_assertion() {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| {
            build(&spec(s, b), &idp.keys.key).replace(">bob</saml:NameID>", ">admin</saml:NameID>")
        },
    )
    .await;
    assert_refused(&stack, &browser, &page, 403, "signature is not valid").await;
}

#[tokio::test]
async fn saml_rejects_a_response_resigned_with_another_key_carrying_the_idp_certificate() {
    let idp = BadIdp::new();
    let attacker = KeyPair::generate("attacker");
    let (stack, browser, page) = attempt(&idp, |_| {}, |s, b| {
        let xml = build(&spec(s, b), &attacker.key);
        let key_info = format!(
            "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>",
            idp.keys.cert_b64()
        );
        xml.replacen("</ds:Signature>", &key_info, 1)
    })
    .await;
    assert_refused(&stack, &browser, &page, 403, "signature is not valid").await;
}

#[tokio::test]
async fn saml_rejects_two_assertions() {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| {
            let first = spec(s, b);
            let mut second = spec(s, b);
            second.name_id_raw = "admin".into();
            let both = format!(
                "{}{}",
                signed_assertion(&first, &idp.keys.key),
                signed_assertion(&second, &idp.keys.key)
            );
            first.response_xml(&both)
        },
    )
    .await;
    assert_refused(
        &stack,
        &browser,
        &page,
        400,
        "exactly one assertion, found 2",
    )
    .await;
}

/// XML signature wrapping (Somorovsky et al., "On Breaking SAML"): the signed original moved
/// somewhere the signature still verifies, an evil unsigned copy where the SP might read.
fn xsw(
    variant: u8,
    s: &SamlStack,
    b: &Begun,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> String {
    let good = spec(s, b);
    let mut evil = spec(s, b);
    evil.name_id_raw = "admin".into();
    evil.sign_assertion = false;
    evil.assertion_id = format!("{}evil", good.assertion_id);
    let evil_assertion = evil.assertion_xml();
    let signed = signed_assertion(&good, key);
    let sig_range = bad::element_range(&signed, "<ds:Signature", "</ds:Signature>");
    let signature = &signed[sig_range.clone()];
    let unsigned_original = format!("{}{}", &signed[..sig_range.start], &signed[sig_range.end..]);
    // The evil assertion with the original signature copied in after its Issuer.
    let with_sig = |inner_sig: &str| {
        evil_assertion.replacen("</saml:Issuer>", &format!("</saml:Issuer>{inner_sig}"), 1)
    };
    match variant {
        1 | 2 => {
            let mut rs = spec(s, b);
            rs.sign_assertion = false;
            rs.sign_response = true;
            let signed_response = build(&rs, key);
            let r = bad::element_range(&signed_response, "<ds:Signature", "</ds:Signature>");
            let rsig = &signed_response[r.clone()];
            let original = format!(
                "{}{}",
                &signed_response[..r.start],
                &signed_response[r.end..]
            );
            let mut outer = spec(s, b);
            outer.response_id = format!("{}evil", rs.response_id);
            outer.sign_assertion = false;
            let body = if variant == 1 {
                format!(
                    "{}{}",
                    rsig.replace("</ds:Signature>", &format!("{original}</ds:Signature>")),
                    evil_assertion
                )
            } else {
                format!("{original}{rsig}{evil_assertion}")
            };
            outer.response_xml(&body)
        }
        3 => good.response_xml(&format!("{evil_assertion}{signed}")),
        4 => good.response_xml(
            &evil_assertion.replace("</saml:Assertion>", &format!("{signed}</saml:Assertion>")),
        ),
        5 => good.response_xml(&format!("{}{unsigned_original}", with_sig(signature))),
        6 => {
            let sig = signature.replace(
                "</ds:Signature>",
                &format!("{unsigned_original}</ds:Signature>"),
            );
            good.response_xml(&with_sig(&sig))
        }
        7 => good.response_xml(&format!(
            "<samlp:Extensions>{signed}</samlp:Extensions>{evil_assertion}"
        )),
        _ => {
            let sig = signature.replace(
                "</ds:Signature>",
                &format!("<ds:Object>{unsigned_original}</ds:Object></ds:Signature>"),
            );
            good.response_xml(&with_sig(&sig))
        }
    }
}

#[tokio::test]
async fn saml_rejects_signature_wrapping_xsw1_to_xsw8() {
    let idp = BadIdp::new();
    let stack = stack(&idp, |_| {}).await;
    for variant in 1..=8u8 {
        let browser = Browser::new();
        let begun = stack.begin(&browser, ID).await;
        let xml = xsw(variant, &stack, &begun, &idp.keys.key);
        let page = stack
            .post_acs(&browser, ID, &encode(&xml), Some(&begun.relay_state))
            .await;
        assert!(
            matches!(page.status.as_u16(), 400 | 403),
            "XSW{variant}: {} {}",
            page.status,
            page.body
        );
        assert!(
            page.body.contains("exactly one assertion")
                || page.body.contains("unexpected structure"),
            "XSW{variant} not refused by the structural checks: {}",
            page.body
        );
        assert!(
            !stack.has_session(&browser).await,
            "XSW{variant} made a session"
        );
    }
    assert!(stack.echo.requests().is_empty());
}

#[tokio::test]
async fn saml_comment_in_name_id_never_truncates_the_user() {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| {
            let mut spec = spec(s, b);
            spec.name_id_raw = "admin@x.com<!---->.evil.com".into();
            build(&spec, &idp.keys.key)
        },
    )
    .await;
    // The user id is read from the canonicalised signed content, where the comment is gone
    // and the text is whole.
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);
    let info = browser.api_get(&stack.url("/_sso/userinfo")).await.json();
    assert_eq!(info["user"], json!("admin@x.com.evil.com"));
}

async fn refused_with(make: impl FnOnce(&mut ResponseSpec), status: u16, reason: &str) {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| {
            let mut spec = spec(s, b);
            make(&mut spec);
            build(&spec, &idp.keys.key)
        },
    )
    .await;
    assert_refused(&stack, &browser, &page, status, reason).await;
}

#[tokio::test]
async fn saml_rejects_a_wrong_audience() {
    refused_with(
        |s| s.audience = Some("https://other-sp.example.com".into()),
        400,
        "Audience",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_a_missing_audience_restriction() {
    refused_with(|s| s.audience = None, 400, "Audience").await;
}

#[tokio::test]
async fn saml_rejects_a_wrong_recipient() {
    refused_with(
        |s| s.recipient = "https://evil.example.com/callback_bad".into(),
        400,
        "Recipient",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_a_wrong_destination() {
    refused_with(
        |s| s.destination = Some("https://evil.example.com/acs".into()),
        400,
        "addressed to",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_an_expired_assertion() {
    refused_with(
        |s| {
            s.not_on_or_after -= 3600;
            s.scd_not_on_or_after = Some(s.not_on_or_after);
        },
        400,
        "has expired",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_an_old_issue_instant() {
    refused_with(|s| s.issue_instant -= 3600, 400, "has expired").await;
}

#[tokio::test]
async fn saml_rejects_a_not_yet_valid_assertion() {
    refused_with(|s| s.not_before += 3600, 400, "not valid yet").await;
}

#[tokio::test]
async fn saml_rejects_a_wrong_issuer() {
    refused_with(
        |s| s.issuer = "https://evil-idp.example.com".into(),
        400,
        "was issued by",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_missing_subject_confirmation_not_on_or_after() {
    refused_with(|s| s.scd_not_on_or_after = None, 400, "NotOnOrAfter").await;
}

#[tokio::test]
async fn saml_rejects_a_sha1_signature() {
    refused_with(|s| s.alg = Alg::Sha1, 403, "not allowed").await;
}

#[tokio::test]
async fn saml_accepts_sha1_only_with_insecure_allow_sha1() {
    let idp = BadIdp::new();
    let tweak = |p: &mut Value| p["insecure_allow_sha1"] = json!(true);
    let (_stack, _browser, page) = attempt(&idp, tweak, |s, b| {
        let mut spec = spec(s, b);
        spec.alg = Alg::Sha1;
        build(&spec, &idp.keys.key)
    })
    .await;
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);
}

#[tokio::test]
async fn saml_reports_a_non_success_status_clearly() {
    refused_with(
        |s| s.status = "urn:oasis:names:tc:SAML:2.0:status:Requester".into(),
        400,
        "identity provider refused the login (status Requester",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_a_dtd_and_entity_expansion() {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(&idp, |_| {}, |s, b| {
        let xml = build(&spec(s, b), &idp.keys.key);
        format!("<!DOCTYPE samlp:Response [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>{xml}")
    })
    .await;
    assert_refused(&stack, &browser, &page, 400, "DTD").await;
}

#[tokio::test]
async fn saml_rejects_an_oversized_response_with_413() {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| {
            let xml = build(&spec(s, b), &idp.keys.key);
            format!("{xml}<!--{}-->", "x".repeat(200 * 1024))
        },
    )
    .await;
    assert_refused(&stack, &browser, &page, 413, "larger than").await;
    // Far beyond the cap, the body is not even read.
    let begun = stack.begin(&browser, ID).await;
    let huge = "A".repeat(400 * 1024);
    let page = stack
        .post_acs(&browser, ID, &huge, Some(&begun.relay_state))
        .await;
    assert_eq!(page.status.as_u16(), 413);
    assert!(!stack.has_session(&browser).await);
}

#[tokio::test]
async fn saml_rejects_in_response_to_of_another_browser() {
    let idp = BadIdp::new();
    let stack = stack(&idp, |_| {}).await;
    let victim = Browser::new();
    let victim_login = stack.begin(&victim, ID).await;
    let attacker = Browser::new();
    let attacker_login = stack.begin(&attacker, ID).await;
    // A response issued for the victim's request, posted in the attacker's own login.
    let xml = build(&spec(&stack, &victim_login), &idp.keys.key);
    let page = stack
        .post_acs(
            &attacker,
            ID,
            &encode(&xml),
            Some(&attacker_login.relay_state),
        )
        .await;
    assert_refused(&stack, &attacker, &page, 400, "InResponseTo").await;
    // And with the victim's RelayState, but without the victim's pending cookie.
    let page = stack
        .post_acs(
            &attacker,
            ID,
            &encode(&xml),
            Some(&victim_login.relay_state),
        )
        .await;
    assert_refused(&stack, &attacker, &page, 400, "no login in progress").await;
}

#[tokio::test]
async fn saml_rejects_a_replayed_response_in_the_same_browser() {
    let idp = BadIdp::new();
    let stack = stack(&idp, |_| {}).await;
    let browser = Browser::new();
    let begun = stack.begin(&browser, ID).await;
    let encoded = encode(&build(&spec(&stack, &begun), &idp.keys.key));
    let first = stack
        .post_acs(&browser, ID, &encoded, Some(&begun.relay_state))
        .await;
    assert_eq!(first.status.as_u16(), 303, "{}", first.body);
    let other = Browser::new();
    let second = stack
        .post_acs(&other, ID, &encoded, Some(&begun.relay_state))
        .await;
    assert_refused(&stack, &other, &second, 400, "login").await;
}

fn unsolicited(stack: &SamlStack, idp: &BadIdp) -> String {
    let spec = ResponseSpec::valid(None, &stack.entity_id(ID), &stack.acs(ID), "bob");
    encode(&build(&spec, &idp.keys.key))
}

#[tokio::test]
async fn saml_rejects_idp_initiated_responses_by_default() {
    let idp = BadIdp::new();
    let stack = stack(&idp, |_| {}).await;
    let browser = Browser::new();
    let page = stack
        .post_acs(&browser, ID, &unsolicited(&stack, &idp), None)
        .await;
    assert_refused(&stack, &browser, &page, 400, "unsolicited").await;
}

#[tokio::test]
async fn saml_replayed_assertion_is_refused_by_the_replay_cache() {
    let idp = BadIdp::new();
    let stack = stack(&idp, |p| p["allow_idp_initiated"] = json!(true)).await;
    let encoded = unsolicited(&stack, &idp);
    let first_browser = Browser::new();
    let first = stack.post_acs(&first_browser, ID, &encoded, None).await;
    assert_eq!(first.status.as_u16(), 303, "{}", first.body);
    assert_eq!(first.header("location"), Some("/"));
    let browser = Browser::new();
    let again = stack.post_acs(&browser, ID, &encoded, None).await;
    assert_eq!(again.status.as_u16(), 400, "{}", again.body);
    assert!(again.body.contains("already used"), "{}", again.body);
    assert!(!stack.has_session(&browser).await);
}

#[tokio::test]
async fn saml_require_signed_assertions_refuses_a_response_signed_only_at_the_top() {
    let idp = BadIdp::new();
    let only_response = |s: &SamlStack, b: &Begun| {
        let mut spec = spec(s, b);
        spec.sign_assertion = false;
        spec.sign_response = true;
        build(&spec, &idp.keys.key)
    };
    let (stack, browser, page) = attempt(&idp, |_| {}, only_response).await;
    assert_refused(&stack, &browser, &page, 403, "require_signed_assertions").await;
    let relaxed = |p: &mut Value| p["require_signed_assertions"] = json!(false);
    let (_stack, _browser, page) = attempt(&idp, relaxed, only_response).await;
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);
}
