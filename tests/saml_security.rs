//! SAML negative cases (DESIGN section 6), each built from a validly signed response with one
//! thing broken, signed at test time by the misbehaving IdP: every one is refused with an error
//! page naming the reason, and no session is created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use openssl::x509::X509;
use serde_json::{json, Value};
use support::browser::{Browser, Page};
use support::saml_bad_idp::{
    self as bad, build, encode, remove_first_signature, signed_assertion, with_key_info, Alg,
    BadIdp, KeyPair, ResponseSpec,
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

/// Re-signed with `attacker`'s key, with `key_info` in the signature's KeyInfo.
async fn resigned_with_key_info(idp: &BadIdp, attacker: &KeyPair, key_info: &X509) {
    let (stack, browser, page) = attempt(
        idp,
        |_| {},
        |s, b| with_key_info(&build(&spec(s, b), &attacker.key), key_info),
    )
    .await;
    assert_refused(&stack, &browser, &page, 403, "signature is not valid").await;
}

#[tokio::test]
async fn saml_rejects_a_response_resigned_with_another_key_carrying_the_idp_certificate() {
    let idp = BadIdp::new();
    let attacker = KeyPair::generate("attacker");
    resigned_with_key_info(&idp, &attacker, &idp.keys.cert).await;
}

/// The attack KeyInfo trust would let through: a certificate with the IdP's subject, issuer,
/// serial and validity but the attacker's key, matching the attacker's signature.
#[tokio::test]
async fn saml_rejects_a_response_resigned_with_a_cloned_idp_certificate_in_key_info() {
    let idp = BadIdp::new();
    let attacker = KeyPair::generate("attacker");
    let cloned = attacker.clone_of(&idp.keys.cert);
    assert_eq!(
        cloned.subject_name().to_der().unwrap(),
        idp.keys.cert.subject_name().to_der().unwrap()
    );
    assert_eq!(
        cloned.serial_number().to_bn().unwrap(),
        idp.keys.cert.serial_number().to_bn().unwrap()
    );
    resigned_with_key_info(&idp, &attacker, &cloned).await;
}

#[tokio::test]
async fn saml_rejects_a_response_resigned_with_the_attackers_own_certificate_in_key_info() {
    let idp = BadIdp::new();
    let attacker = KeyPair::generate("attacker");
    resigned_with_key_info(&idp, &attacker, &attacker.cert).await;
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

/// Posts XSW variant `variant` and checks it is refused, with no session, by the structural
/// rule whose message contains `rule`.
async fn xsw_refused(variant: u8, rule: &str) {
    let idp = BadIdp::new();
    let (stack, browser, page) =
        attempt(&idp, |_| {}, |s, b| xsw(variant, s, b, &idp.keys.key)).await;
    assert_refused(&stack, &browser, &page, 400, rule).await;
}

const MORE_THAN_ONE_RESPONSE: &str = "the document holds more than one Response";
const TWO_ASSERTIONS: &str = "exactly one assertion, found 2";

#[tokio::test]
async fn saml_rejects_signature_wrapping_xsw1() {
    xsw_refused(1, MORE_THAN_ONE_RESPONSE).await;
}

#[tokio::test]
async fn saml_rejects_signature_wrapping_xsw2() {
    xsw_refused(2, MORE_THAN_ONE_RESPONSE).await;
}

#[tokio::test]
async fn saml_rejects_signature_wrapping_xsw3() {
    xsw_refused(3, TWO_ASSERTIONS).await;
}

#[tokio::test]
async fn saml_rejects_signature_wrapping_xsw4() {
    xsw_refused(4, TWO_ASSERTIONS).await;
}

#[tokio::test]
async fn saml_rejects_signature_wrapping_xsw5() {
    xsw_refused(5, TWO_ASSERTIONS).await;
}

#[tokio::test]
async fn saml_rejects_signature_wrapping_xsw6() {
    xsw_refused(6, TWO_ASSERTIONS).await;
}

#[tokio::test]
async fn saml_rejects_signature_wrapping_xsw7() {
    xsw_refused(7, TWO_ASSERTIONS).await;
}

#[tokio::test]
async fn saml_rejects_signature_wrapping_xsw8() {
    xsw_refused(8, TWO_ASSERTIONS).await;
}

/// Wrapping shapes with a single assertion, so they get past the count rule: each is built
/// from validly made signatures, and must be refused by the structural rule named in `rule`
/// (400) with no session.
async fn single_assertion_shape_refused(
    make: impl FnOnce(&ResponseSpec, &openssl::pkey::PKey<openssl::pkey::Private>) -> String,
    rule: &str,
) {
    let idp = BadIdp::new();
    let (stack, browser, page) =
        attempt(&idp, |_| {}, |s, b| make(&spec(s, b), &idp.keys.key)).await;
    assert_refused(&stack, &browser, &page, 400, rule).await;
}

const SIGNATURE_OUTSIDE: &str = "a Signature sits outside the Response and the Assertion";

/// The assertion's own signature, validly made, but nested in its Subject.
#[tokio::test]
async fn saml_rejects_a_signature_nested_in_the_subject() {
    single_assertion_shape_refused(
        |spec, key| {
            let mut unsigned = spec.clone();
            unsigned.sign_assertion = false;
            let template = spec.signature_template(&spec.assertion_id);
            let assertion = unsigned.assertion_xml().replacen(
                "<saml:Subject>",
                &format!("<saml:Subject>{template}"),
                1,
            );
            spec.response_xml(&bad::sign_first(&assertion, key))
        },
        SIGNATURE_OUTSIDE,
    )
    .await;
}

/// A validly signed assertion, plus the Response's signature (valid too) in its Extensions.
#[tokio::test]
async fn saml_rejects_a_response_signature_nested_in_extensions() {
    single_assertion_shape_refused(
        |spec, key| {
            let template = spec.signature_template(&spec.response_id);
            let response = spec.response_xml(&signed_assertion(spec, key)).replacen(
                "<samlp:Status>",
                &format!("<samlp:Extensions>{template}</samlp:Extensions><samlp:Status>"),
                1,
            );
            bad::sign_first(&response, key)
        },
        SIGNATURE_OUTSIDE,
    )
    .await;
}

/// A signature sitting in the Response whose Reference points at the Assertion (the only
/// thing signed is the assertion, but the signature claims the Response's place).
#[tokio::test]
async fn saml_rejects_a_signature_whose_reference_points_at_another_element() {
    single_assertion_shape_refused(
        |spec, key| {
            let mut unsigned = spec.clone();
            unsigned.sign_assertion = false;
            let template = spec.signature_template(&spec.assertion_id);
            let response = unsigned.response_xml(&unsigned.assertion_xml()).replacen(
                "<samlp:Status>",
                &format!("{template}<samlp:Status>"),
                1,
            );
            bad::sign_first(&response, key)
        },
        "a Signature's Reference does not point at the element that carries it",
    )
    .await;
}

/// The one validly signed assertion, not a direct child of the Response.
#[tokio::test]
async fn saml_rejects_an_assertion_that_is_not_a_direct_child_of_the_response() {
    single_assertion_shape_refused(
        |spec, key| {
            spec.response_xml(&format!(
                "<samlp:Extensions>{}</samlp:Extensions>",
                signed_assertion(spec, key)
            ))
        },
        "the Assertion is not a direct child of the Response",
    )
    .await;
}

/// The assertion's valid signature, twice on the same element.
#[tokio::test]
async fn saml_rejects_two_signatures_on_one_element() {
    single_assertion_shape_refused(
        |spec, key| {
            let signed = signed_assertion(spec, key);
            let r = bad::element_range(&signed, "<ds:Signature", "</ds:Signature>");
            let doubled = format!(
                "{}{}{}",
                &signed[..r.end],
                &signed[r.clone()],
                &signed[r.end..]
            );
            spec.response_xml(&doubled)
        },
        "an element carries more than one Signature",
    )
    .await;
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
async fn saml_rejects_expired_conditions_alone() {
    refused_with(
        |s| s.not_on_or_after -= 3600,
        400,
        "assertion (Conditions NotOnOrAfter) has expired",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_an_expired_subject_confirmation_alone() {
    refused_with(
        |s| s.scd_not_on_or_after = Some(s.issue_instant - 3600),
        400,
        "assertion (SubjectConfirmationData NotOnOrAfter) has expired",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_a_subject_confirmation_not_valid_yet() {
    refused_with(
        |s| s.scd_not_before = Some(s.issue_instant + 3600),
        400,
        "assertion (SubjectConfirmationData NotBefore) is not valid yet",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_an_old_issue_instant() {
    refused_with(|s| s.issue_instant -= 3600, 400, "has expired").await;
}

/// `xml` with the (unsigned) Response's IssueInstant set to `at`, the assertion's untouched.
fn response_issue_instant(xml: &str, at: i64) -> String {
    let open_end = xml.find('>').unwrap();
    let head = &xml[..open_end];
    let start = head.find(r#"IssueInstant=""#).unwrap() + r#"IssueInstant=""#.len();
    let end = start + head[start..].find('"').unwrap();
    let when = chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!("{}{when}{}", &xml[..start], &xml[end..])
}

/// IssueInstant in the future beyond the skew is refused, for the Response and for the signed
/// assertion each on its own (an IdP clock that far ahead is not trusted).
#[tokio::test]
async fn saml_rejects_an_issue_instant_in_the_future() {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| {
            let mut spec = spec(s, b);
            spec.issue_instant += 3600;
            let xml = build(&spec, &idp.keys.key);
            response_issue_instant(&xml, spec.issue_instant - 3600)
        },
    )
    .await;
    assert_refused(
        &stack,
        &browser,
        &page,
        400,
        "the SAML assertion is not valid yet",
    )
    .await;
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| {
            let spec = spec(s, b);
            let xml = build(&spec, &idp.keys.key);
            response_issue_instant(&xml, spec.issue_instant + 3600)
        },
    )
    .await;
    assert_refused(
        &stack,
        &browser,
        &page,
        400,
        "the SAML response is not valid yet",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_a_not_yet_valid_assertion() {
    refused_with(|s| s.not_before += 3600, 400, "not valid yet").await;
}

/// Expired two minutes ago: refused with the default 60 s skew, accepted with `clock_skew: 5m`.
#[tokio::test]
async fn saml_clock_skew_from_the_config_widens_the_validity_window() {
    let idp = BadIdp::new();
    let expired = |s: &SamlStack, b: &Begun| {
        let mut spec = spec(s, b);
        spec.not_on_or_after = spec.issue_instant - 120;
        spec.scd_not_on_or_after = Some(spec.not_on_or_after);
        build(&spec, &idp.keys.key)
    };
    let (stack, browser, page) = attempt(&idp, |_| {}, expired).await;
    assert_refused(&stack, &browser, &page, 400, "has expired").await;
    let skewed = |p: &mut Value| p["clock_skew"] = json!("5m");
    let (stack, browser, page) = attempt(&idp, skewed, expired).await;
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);
    assert!(stack.has_session(&browser).await);
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

/// Only the signed assertion names another issuer; the Response's Issuer is `response_issuer`
/// (the right one, or absent when `None`).
async fn assertion_issuer_alone_wrong(response_issuer: Option<&str>) {
    let idp = BadIdp::new();
    let (stack, browser, page) = attempt(
        &idp,
        |_| {},
        |s, b| {
            let mut spec = spec(s, b);
            spec.issuer = "https://evil-idp.example.com".into();
            let xml = build(&spec, &idp.keys.key);
            let r = bad::element_range(&xml, "<saml:Issuer>", "</saml:Issuer>");
            assert!(r.end < xml.find("<saml:Assertion").unwrap());
            let replacement = response_issuer
                .map(|i| format!("<saml:Issuer>{i}</saml:Issuer>"))
                .unwrap_or_default();
            format!("{}{replacement}{}", &xml[..r.start], &xml[r.end..])
        },
    )
    .await;
    assert_refused(
        &stack,
        &browser,
        &page,
        400,
        "the SAML assertion was issued by \"https://evil-idp.example.com\"",
    )
    .await;
}

#[tokio::test]
async fn saml_rejects_a_wrong_assertion_issuer_under_the_right_response_issuer() {
    assertion_issuer_alone_wrong(Some(bad::ENTITY_ID)).await;
}

#[tokio::test]
async fn saml_rejects_a_wrong_assertion_issuer_without_a_response_issuer() {
    assertion_issuer_alone_wrong(None).await;
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

/// The real attack: the victim's signed assertion with only the unsigned
/// `Response@InResponseTo` rewritten to the attacker's request id. The Response check passes;
/// the signed SubjectConfirmationData's InResponseTo must refuse it.
#[tokio::test]
async fn saml_rejects_a_victims_assertion_with_only_the_unsigned_in_response_to_rewritten() {
    let idp = BadIdp::new();
    let stack = stack(&idp, |_| {}).await;
    let victim = Browser::new();
    let victim_login = stack.begin(&victim, ID).await;
    let attacker = Browser::new();
    let attacker_login = stack.begin(&attacker, ID).await;
    let xml = build(&spec(&stack, &victim_login), &idp.keys.key);
    let from = format!(r#" InResponseTo="{}""#, victim_login.request_id);
    let to = format!(r#" InResponseTo="{}""#, attacker_login.request_id);
    let response_end = xml.find("<saml:Assertion").unwrap();
    assert!(xml[..response_end].contains(&from));
    let rewritten = format!(
        "{}{}",
        xml[..response_end].replacen(&from, &to, 1),
        &xml[response_end..]
    );
    let assertion_at = rewritten.find("<saml:Assertion").unwrap();
    assert!(
        rewritten[assertion_at..].contains(&from),
        "the signed assertion still answers the victim"
    );
    let page = stack
        .post_acs(
            &attacker,
            ID,
            &encode(&rewritten),
            Some(&attacker_login.relay_state),
        )
        .await;
    assert_refused(&stack, &attacker, &page, 400, "InResponseTo").await;
}

/// A browser that logged in and out replays its own ACS POST: the RelayState's pending cookie
/// is gone ("no login in progress"); re-sending the captured pending cookie too is refused by
/// its single-use mark ("already used"). Neither creates a session.
#[tokio::test]
async fn saml_replayed_response_in_the_same_browser_is_refused_after_logout() {
    let idp = BadIdp::new();
    let stack = stack(&idp, |_| {}).await;
    let browser = Browser::new();
    let begun = stack.begin(&browser, ID).await;
    let acs = stack.acs(ID);
    let captured_cookies = browser.cookie_header(&acs).expect("the pending cookie");
    let encoded = encode(&build(&spec(&stack, &begun), &idp.keys.key));
    let first = stack
        .post_acs(&browser, ID, &encoded, Some(&begun.relay_state))
        .await;
    assert_eq!(first.status.as_u16(), 303, "{}", first.body);
    assert!(stack.has_session(&browser).await);
    let logout = browser
        .send(
            browser
                .nav(reqwest::Method::POST, &stack.url("/_sso/logout"))
                .header("origin", stack.public_url.clone()),
        )
        .await;
    assert_eq!(logout.status.as_u16(), 303, "{}", logout.body);
    assert!(!stack.has_session(&browser).await);
    let again = stack
        .post_acs(&browser, ID, &encoded, Some(&begun.relay_state))
        .await;
    assert_refused(
        &stack,
        &browser,
        &again,
        400,
        "no login in progress for this state in this browser",
    )
    .await;
    let form = [
        ("SAMLResponse", encoded.as_str()),
        ("RelayState", begun.relay_state.as_str()),
    ];
    let replayed = browser
        .send(
            browser
                .nav(reqwest::Method::POST, &acs)
                .header("origin", "null")
                .header("cookie", captured_cookies)
                .form(&form),
        )
        .await;
    assert_refused(
        &stack,
        &browser,
        &replayed,
        400,
        "this login response was already used",
    )
    .await;
}

fn unsolicited(stack: &SamlStack, idp: &BadIdp) -> String {
    let spec = ResponseSpec::valid(None, &stack.entity_id(ID), &stack.acs(ID), "bob");
    encode(&build(&spec, &idp.keys.key))
}

/// `RelayState` is only the opaque key of the pending cookie: 32 random bytes as 43 base64url
/// characters, telling nothing of the post-login target.
#[tokio::test]
async fn saml_relay_state_is_an_opaque_key_without_the_target() {
    let idp = BadIdp::new();
    let stack = stack(&idp, |_| {}).await;
    let browser = Browser::new();
    let target = "/private/report-7731";
    let page = browser
        .navigate(&stack.url(&format!("/_sso/login?provider={ID}&rd={target}")))
        .await;
    assert_eq!(page.status.as_u16(), 302, "{}", page.body);
    let location = page.location().expect("IdP redirect");
    let relay_state = location
        .query_pairs()
        .find(|(k, _)| k == "RelayState")
        .map(|(_, v)| v.into_owned())
        .expect("RelayState");
    assert_eq!(relay_state.len(), 43, "{relay_state}");
    assert!(
        relay_state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{relay_state}"
    );
    let request = location
        .query_pairs()
        .find(|(k, _)| k == "SAMLRequest")
        .map(|(_, v)| sso_proxy::providers::saml::request::inflate(&v).unwrap())
        .expect("SAMLRequest");
    for text in [location.as_str(), request.as_str()] {
        assert!(!text.contains("report-7731"), "the target leaks: {text}");
    }
    // Two logins: two unrelated keys.
    let other = stack.begin(&browser, ID).await;
    assert_ne!(other.relay_state, relay_state);
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
