//! Unit tests for the SAML wrapper: structural checks, the verification pipeline with an
//! injected clock (responses signed here with a key made at test time), claims and `sid`.

use base64::Engine as _;
use openssl::pkey::{PKey, Private};
use samael::crypto::{Crypto, CryptoProvider};

use super::metadata::IdpMetadata;
use super::structure;
use super::verify::{self, Expectations, ResponseError, VerifiedAssertion};
use super::*;

const IDP: &str = "https://idp.test/metadata";
const SP: &str = "https://sp.test/_sso/saml/t/metadata";
const ACS: &str = "https://sp.test/callback_t";
/// 2030-01-01T00:00:00Z
const T0: i64 = 1_893_456_000;

fn key_and_cert() -> (PKey<Private>, Vec<u8>) {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, rsa::Rsa, x509::X509};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut b = X509::builder().unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (key, b.build().to_der().unwrap())
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

const SIG: &str = r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#a1"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>"##;

/// A response to request `req1` issued at `T0`, valid for five minutes.
fn response(sig: &str, status: &str) -> String {
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r1" Version="2.0" IssueInstant="{t}" Destination="{ACS}" InResponseTo="req1"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">{IDP}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="a1" Version="2.0" IssueInstant="{t}"><saml:Issuer>{IDP}</saml:Issuer>{sig}<saml:Subject><saml:NameID>alice</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{ACS}" InResponseTo="req1"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{t}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{SP}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AttributeStatement><saml:Attribute Name="urn:oid:0.9.2342.19200300.100.1.3" FriendlyName="mail"><saml:AttributeValue>alice@example.com</saml:AttributeValue></saml:Attribute><saml:Attribute Name="groups"><saml:AttributeValue>admins</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>"#,
        t = time(T0),
        until = time(T0 + 300),
    )
}

fn signed(key: &PKey<Private>) -> String {
    let xml = response(SIG, structure::STATUS_SUCCESS);
    let out = Crypto::sign_xml(xml, &key.private_key_to_der().unwrap()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn idp(cert: Vec<u8>) -> IdpMetadata {
    IdpMetadata {
        entity_id: IDP.into(),
        signing_certs: vec![cert.into()],
        sso_redirect: url::Url::parse("https://idp.test/sso").unwrap(),
        slo_redirect: None,
    }
}

fn want(idp: &IdpMetadata, now: i64) -> Expectations<'_> {
    Expectations {
        idp,
        sp_entity_id: SP,
        acs_url: ACS,
        request_id: Some("req1"),
        require_signed_assertions: true,
        allow_sha1: false,
        skew_secs: 60,
        now,
    }
}

#[test]
fn signed_response_verifies_at_the_injected_time_and_not_after_it() {
    let (key, cert) = key_and_cert();
    let encoded = signed(&key);
    let meta = idp(cert);
    let ok = verify::verify(&encoded, &want(&meta, T0 + 10)).unwrap();
    assert_eq!(ok.name_id, "alice");
    assert_eq!(ok.valid_until, T0 + 300 + 60);
    // Within the skew after NotOnOrAfter: still fine; beyond it: expired.
    assert!(verify::verify(&encoded, &want(&meta, T0 + 359)).is_ok());
    assert!(matches!(
        verify::verify(&encoded, &want(&meta, T0 + 361)),
        Err(ResponseError::Expired(_))
    ));
    // Before the IssueInstant by more than the skew: not valid yet.
    assert!(matches!(
        verify::verify(&encoded, &want(&meta, T0 - 61)),
        Err(ResponseError::NotYetValid(_))
    ));
}

#[test]
fn signature_from_another_key_is_refused() {
    let (key, _) = key_and_cert();
    let (_, other_cert) = key_and_cert();
    let meta = idp(other_cert);
    assert_eq!(
        verify::verify(&signed(&key), &want(&meta, T0)),
        Err(ResponseError::BadSignature)
    );
}

#[test]
fn request_id_and_audience_are_bound() {
    let (key, cert) = key_and_cert();
    let encoded = signed(&key);
    let meta = idp(cert);
    let mut w = want(&meta, T0);
    w.request_id = Some("req2");
    assert_eq!(
        verify::verify(&encoded, &w),
        Err(ResponseError::InResponseTo)
    );
    let mut w = want(&meta, T0);
    w.request_id = None;
    assert_eq!(
        verify::verify(&encoded, &w),
        Err(ResponseError::InResponseTo)
    );
    let mut w = want(&meta, T0);
    w.sp_entity_id = "https://other";
    assert_eq!(verify::verify(&encoded, &w), Err(ResponseError::Audience));
}

#[test]
fn structure_refuses_dtd_wrong_root_and_bad_status_before_signatures() {
    let xml = response(SIG, structure::STATUS_SUCCESS);
    assert!(structure::check(&xml, false).is_ok());
    let dtd = format!("<!DOCTYPE x [<!ENTITY e \"x\">]>{xml}");
    assert_eq!(structure::check(&dtd, false), Err(ResponseError::Dtd));
    let requester = response("", "urn:oasis:names:tc:SAML:2.0:status:Requester");
    assert!(matches!(
        structure::check(&requester, false),
        Err(ResponseError::Status { code, .. }) if code == "Requester"
    ));
    let not_response = xml.replace("samlp:Response", "samlp:ArtifactResponse");
    assert!(matches!(
        structure::check(&not_response, false),
        Err(ResponseError::Structure(_))
    ));
}

#[test]
fn structure_checks_references_and_algorithms() {
    let wrong_ref = response(
        &SIG.replace("URI=\"#a1\"", "URI=\"#r1\""),
        structure::STATUS_SUCCESS,
    );
    assert!(matches!(
        structure::check(&wrong_ref, false),
        Err(ResponseError::Structure(_))
    ));
    let two_refs = SIG.replace(
        "</ds:SignedInfo>",
        "<ds:Reference URI=\"#a1\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/></ds:Reference></ds:SignedInfo>",
    );
    let two_refs = response(&two_refs, structure::STATUS_SUCCESS);
    assert!(matches!(
        structure::check(&two_refs, false),
        Err(ResponseError::Structure(_))
    ));
    let sha1 = SIG
        .replace("xmldsig-more#rsa-sha256", "xmldsig#rsa-sha1")
        .replace("xmlenc#sha256", "xmldsig#sha1")
        .replace(
            "http://www.w3.org/2001/04/xmldsig#",
            "http://www.w3.org/2000/09/xmldsig#",
        );
    let sha1 = response(&sha1, structure::STATUS_SUCCESS);
    assert!(matches!(
        structure::check(&sha1, false),
        Err(ResponseError::Algorithm { .. })
    ));
    assert!(structure::check(&sha1, true).is_ok());
    let comments = SIG.replace(
        "xml-exc-c14n#\"/></ds:Transforms>",
        "xml-exc-c14n#WithComments\"/></ds:Transforms>",
    );
    let comments = response(&comments, structure::STATUS_SUCCESS);
    assert!(matches!(
        structure::check(&comments, false),
        Err(ResponseError::Algorithm { .. })
    ));
}

#[test]
fn oversized_and_garbage_input_are_refused_without_parsing() {
    let big = "A".repeat(verify::MAX_ENCODED_RESPONSE + 4);
    assert_eq!(verify::decode(&big), Err(ResponseError::TooLarge));
    assert_eq!(ResponseError::TooLarge.status(), 413);
    assert_eq!(verify::decode("%%%"), Err(ResponseError::Encoding));
    assert_eq!(ResponseError::BadSignature.status(), 403);
    assert_eq!(ResponseError::Audience.status(), 400);
}

#[test]
fn claims_use_names_then_friendly_names_and_groups_stay_lists() {
    let a = VerifiedAssertion {
        id: "a".into(),
        name_id: "alice".into(),
        name_id_format: None,
        session_index: None,
        attributes: vec![
            (
                "urn:oid:mail".into(),
                Some("mail".into()),
                vec!["a@x".into()],
            ),
            ("groups".into(), None, vec!["admins".into()]),
            ("roles".into(), None, vec!["r1".into(), "r2".into()]),
        ],
        valid_until: 0,
    };
    let c = claims(&a, "groups");
    assert_eq!(c["urn:oid:mail"], "a@x");
    assert_eq!(c["mail"], "a@x");
    assert_eq!(c["groups"], serde_json::json!(["admins"]));
    assert_eq!(c["roles"], serde_json::json!(["r1", "r2"]));
    assert_eq!(c["nameid"], "alice");
}

#[test]
fn sid_packs_session_index_and_format() {
    let sid = pack_sid(Some("s1"), Some("urn:f")).unwrap();
    assert_eq!(unpack_sid(Some(&sid)), (Some("s1"), Some("urn:f")));
    let sid = pack_sid(None, Some("urn:f")).unwrap();
    assert_eq!(unpack_sid(Some(&sid)), (None, Some("urn:f")));
    assert_eq!(pack_sid(None, None), None);
}
