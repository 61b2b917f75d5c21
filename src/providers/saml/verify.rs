//! Verifying a `SAMLResponse` (DESIGN section 6). In order: the size cap, base64, the
//! structural checks ([`super::structure`]), signature verification by samael/xmlsec against
//! the IdP metadata's certificates only (KeyInfo in the response is never trusted), and then
//! every semantic check on the *signed* content: the assertion is parsed from xmlsec's
//! pre-digest output of the verified Reference, so what we read is exactly what was signed.
//! Times are checked against an injected clock.

use base64::Engine as _;
use samael::crypto::{AllowedSignatureAlgorithm, Crypto, CryptoProvider, ReduceMode};
use samael::schema::{Assertion, Response, SubjectConfirmation};

use super::metadata::IdpMetadata;
use super::structure::{self, Shape};

/// Largest accepted `SAMLResponse`, base64 as posted.
pub const MAX_ENCODED_RESPONSE: usize = 256 * 1024;
/// Responses and assertions older than this (plus the skew) are refused.
pub const MAX_AGE_SECS: i64 = 10 * 60;

const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const ENTITY_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";
const STRONG: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// Why a response was refused. [`ResponseError::status`] gives the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the SAML response is larger than {} KiB", MAX_ENCODED_RESPONSE / 1024)]
    TooLarge,
    #[error("the SAML response is not valid base64-encoded UTF-8")]
    Encoding,
    #[error("the SAML response is not well-formed XML: {0}")]
    Xml(String),
    #[error("the SAML response contains a DTD; DTDs are never accepted")]
    Dtd,
    #[error("the identity provider refused the login (status {code}{})", status_suffix(.detail, .message))]
    Status {
        code: String,
        detail: Option<String>,
        message: Option<String>,
    },
    #[error("the SAML response must contain exactly one assertion, found {0}")]
    AssertionCount(usize),
    #[error("the SAML response has an unexpected structure: {0}")]
    Structure(String),
    #[error("the SAML response uses a {what} that is not allowed: {uri}")]
    Algorithm { what: &'static str, uri: String },
    #[error("the SAML response is not signed: {0}")]
    Unsigned(&'static str),
    #[error("the SAML response signature is not valid for the identity provider's certificate")]
    BadSignature,
    #[error("the signed SAML content could not be read: {0}")]
    SignedContent(String),
    #[error("the SAML response is addressed to {found:?}, not to this service's ACS URL")]
    Destination { found: String },
    #[error("the SAML assertion's Recipient {found:?} is not this service's ACS URL")]
    Recipient { found: Option<String> },
    #[error("the SAML assertion is not for this service (Audience)")]
    Audience,
    #[error("the SAML {what} was issued by {found:?}, not by the identity provider")]
    Issuer { what: &'static str, found: String },
    #[error("the SAML response does not answer this browser's login request (InResponseTo)")]
    InResponseTo,
    #[error("unsolicited (IdP-initiated) SAML responses are not accepted by this connection")]
    Unsolicited,
    #[error("the SAML {0} has expired")]
    Expired(&'static str),
    #[error("the SAML {0} is not valid yet")]
    NotYetValid(&'static str),
    #[error("the SAML assertion has no bearer SubjectConfirmationData with NotOnOrAfter")]
    NoConfirmationExpiry,
    #[error("the SAML assertion is missing {0}")]
    Missing(&'static str),
    #[error("this SAML assertion was already used")]
    Replayed,
}

fn status_suffix(detail: &Option<String>, message: &Option<String>) -> String {
    let mut out = String::new();
    if let Some(d) = detail {
        out.push_str(&format!(" / {d}"));
    }
    if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
        out.push_str(&format!(": {m}"));
    }
    out
}

impl ResponseError {
    /// 413 for an oversized response, 403 for signature failures, 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            ResponseError::TooLarge => 413,
            ResponseError::Algorithm { .. }
            | ResponseError::Unsigned(_)
            | ResponseError::BadSignature => 403,
            _ => 400,
        }
    }
}

/// What a response must match.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub idp: &'a IdpMetadata,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    /// The AuthnRequest ID from this browser's pending state; `None` for an unsolicited
    /// response (only with `allow_idp_initiated`).
    pub request_id: Option<&'a str>,
    pub require_signed_assertions: bool,
    pub allow_sha1: bool,
    pub skew_secs: i64,
    /// Unix seconds.
    pub now: i64,
}

/// A verified assertion, reduced to what the login uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub id: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_index: Option<String>,
    /// `(Name, FriendlyName, values)` of every attribute.
    pub attributes: Vec<(String, Option<String>, Vec<String>)>,
    /// Unix seconds after which the assertion can no longer be accepted (for the replay cache).
    pub valid_until: i64,
}

/// Only the base64 and size steps: the response XML, for logging or unsolicited detection.
pub fn decode(encoded: &str) -> Result<String, ResponseError> {
    if encoded.len() > MAX_ENCODED_RESPONSE {
        return Err(ResponseError::TooLarge);
    }
    let compact: String = encoded.split_ascii_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| ResponseError::Encoding)?;
    String::from_utf8(bytes).map_err(|_| ResponseError::Encoding)
}

/// Verifies a base64 `SAMLResponse` as posted to the ACS.
pub fn verify(encoded: &str, want: &Expectations<'_>) -> Result<VerifiedAssertion, ResponseError> {
    let xml = decode(encoded)?;
    let shape = structure::check(&xml, want.allow_sha1)?;
    if !shape.response_signed && !shape.assertion_signed {
        return Err(ResponseError::Unsigned(
            "neither the response nor the assertion carries a signature",
        ));
    }
    if want.require_signed_assertions && !shape.assertion_signed {
        return Err(ResponseError::Unsigned(
            "the assertion itself is not signed (require_signed_assertions)",
        ));
    }
    let algorithms = (!want.allow_sha1).then_some(STRONG);
    let signed = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        &xml,
        &want.idp.signing_certs,
        ReduceMode::PreDigest,
        algorithms,
    )
    .map_err(|_| ResponseError::BadSignature)?;
    let assertion = signed_assertion(&signed, &shape)?;
    check_response(&shape, want)?;
    check_assertion(&assertion, want)
}

/// The assertion as signed: from the signed Response's pre-digest when the Response is
/// signed, else from the signed Assertion's own.
fn signed_assertion(signed: &str, shape: &Shape) -> Result<Assertion, ResponseError> {
    let content = |e: String| ResponseError::SignedContent(e.chars().take(160).collect());
    let assertion = if shape.response_signed {
        let response: Response = signed
            .parse()
            .map_err(|e: samael::metadata::de::DeError| content(e.to_string()))?;
        if response.id != shape.response_id {
            return Err(content("the signed element is not this Response".into()));
        }
        response
            .assertion
            .ok_or_else(|| content("the signed Response holds no assertion".into()))?
    } else {
        signed
            .parse::<Assertion>()
            .map_err(|e| content(e.to_string()))?
    };
    if assertion.id != shape.assertion_id {
        return Err(content("the signed element is not this Assertion".into()));
    }
    Ok(assertion)
}

fn parse_time(text: Option<&str>, what: &'static str) -> Result<i64, ResponseError> {
    let text = text.ok_or(ResponseError::Missing(what))?;
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp())
        .map_err(|_| ResponseError::Missing(what))
}

/// IssueInstant: not in the future beyond the skew, not older than `MAX_AGE_SECS`.
fn check_issue_instant(
    at: i64,
    what: &'static str,
    want: &Expectations<'_>,
) -> Result<(), ResponseError> {
    if at > want.now + want.skew_secs {
        return Err(ResponseError::NotYetValid(what));
    }
    if at + MAX_AGE_SECS + want.skew_secs < want.now {
        return Err(ResponseError::Expired(what));
    }
    Ok(())
}

fn check_response(shape: &Shape, want: &Expectations<'_>) -> Result<(), ResponseError> {
    if shape.version.as_deref() != Some("2.0") {
        return Err(ResponseError::Structure(
            "the Response is not SAML 2.0".into(),
        ));
    }
    match shape.destination.as_deref() {
        Some(d) if d != want.acs_url => {
            return Err(ResponseError::Destination {
                found: d.to_owned(),
            })
        }
        None if shape.response_signed => {
            return Err(ResponseError::Missing("the Response Destination"))
        }
        _ => {}
    }
    if let Some(issuer) = shape.issuer.as_deref() {
        if issuer != want.idp.entity_id {
            return Err(ResponseError::Issuer {
                what: "response",
                found: issuer.to_owned(),
            });
        }
    }
    match (want.request_id, shape.in_response_to.as_deref()) {
        (Some(expected), Some(found)) if expected == found => {}
        (None, None) => {}
        _ => return Err(ResponseError::InResponseTo),
    }
    let instant = parse_time(shape.issue_instant.as_deref(), "Response IssueInstant")?;
    check_issue_instant(instant, "response", want)
}

fn check_assertion(
    a: &Assertion,
    want: &Expectations<'_>,
) -> Result<VerifiedAssertion, ResponseError> {
    if a.version != "2.0" {
        return Err(ResponseError::Structure(
            "the Assertion is not SAML 2.0".into(),
        ));
    }
    let issuer = a.issuer.value.as_deref().unwrap_or_default().trim();
    let entity_format = a
        .issuer
        .format
        .as_deref()
        .is_none_or(|f| f == ENTITY_FORMAT);
    if issuer != want.idp.entity_id || !entity_format {
        return Err(ResponseError::Issuer {
            what: "assertion",
            found: issuer.to_owned(),
        });
    }
    check_issue_instant(a.issue_instant.timestamp(), "assertion", want)?;
    let conditions_until = check_conditions(a, want)?;
    let subject = a
        .subject
        .as_ref()
        .ok_or(ResponseError::Missing("a Subject"))?;
    let name_id = subject
        .name_id
        .as_ref()
        .filter(|n| !n.value.trim().is_empty())
        .ok_or(ResponseError::Missing("a NameID"))?;
    let confirmations = subject.subject_confirmations.as_deref().unwrap_or_default();
    let confirmed_until = check_confirmations(confirmations, want)?;
    let session_index = a
        .authn_statements
        .iter()
        .flatten()
        .find_map(|s| s.session_index.clone());
    let attributes = a
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| &s.attributes)
        .filter_map(|attr| {
            let name = attr.name.clone().filter(|n| !n.is_empty())?;
            let values = attr.values.iter().filter_map(|v| v.value.clone()).collect();
            Some((name, attr.friendly_name.clone(), values))
        })
        .collect();
    let until = conditions_until.map_or(confirmed_until, |c| c.min(confirmed_until));
    Ok(VerifiedAssertion {
        id: a.id.clone(),
        name_id: name_id.value.trim().to_owned(),
        name_id_format: name_id.format.clone(),
        session_index,
        attributes,
        valid_until: until + want.skew_secs,
    })
}

/// Conditions are required (for the AudienceRestriction); returns their NotOnOrAfter.
fn check_conditions(a: &Assertion, want: &Expectations<'_>) -> Result<Option<i64>, ResponseError> {
    let c = a
        .conditions
        .as_ref()
        .ok_or(ResponseError::Missing("Conditions"))?;
    if let Some(nb) = c.not_before {
        if want.now + want.skew_secs < nb.timestamp() {
            return Err(ResponseError::NotYetValid(
                "assertion (Conditions NotBefore)",
            ));
        }
    }
    let until = c.not_on_or_after.map(|t| t.timestamp());
    if let Some(until) = until {
        if want.now - want.skew_secs >= until {
            return Err(ResponseError::Expired(
                "assertion (Conditions NotOnOrAfter)",
            ));
        }
    }
    let restrictions = c.audience_restrictions.as_deref().unwrap_or_default();
    let ours = |r: &samael::schema::AudienceRestriction| {
        r.audience.iter().any(|aud| aud.trim() == want.sp_entity_id)
    };
    if restrictions.is_empty() || !restrictions.iter().all(ours) {
        return Err(ResponseError::Audience);
    }
    Ok(until)
}

/// At least one bearer confirmation must pass every check; returns its NotOnOrAfter. The
/// first failure is reported when none passes.
fn check_confirmations(
    list: &[SubjectConfirmation],
    want: &Expectations<'_>,
) -> Result<i64, ResponseError> {
    let mut first_error = None;
    for c in list.iter().filter(|c| c.method.as_deref() == Some(BEARER)) {
        match check_confirmation(c, want) {
            Ok(until) => return Ok(until),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(ResponseError::Missing("a bearer SubjectConfirmation")))
}

fn check_confirmation(
    c: &SubjectConfirmation,
    want: &Expectations<'_>,
) -> Result<i64, ResponseError> {
    let data = c
        .subject_confirmation_data
        .as_ref()
        .ok_or(ResponseError::NoConfirmationExpiry)?;
    let until = data
        .not_on_or_after
        .map(|t| t.timestamp())
        .ok_or(ResponseError::NoConfirmationExpiry)?;
    if want.now - want.skew_secs >= until {
        return Err(ResponseError::Expired(
            "assertion (SubjectConfirmationData NotOnOrAfter)",
        ));
    }
    if let Some(nb) = data.not_before {
        if want.now + want.skew_secs < nb.timestamp() {
            return Err(ResponseError::NotYetValid(
                "assertion (SubjectConfirmationData NotBefore)",
            ));
        }
    }
    if data.recipient.as_deref() != Some(want.acs_url) {
        return Err(ResponseError::Recipient {
            found: data.recipient.clone(),
        });
    }
    match (want.request_id, data.in_response_to.as_deref()) {
        (Some(expected), Some(found)) if expected == found => Ok(until),
        (None, None) => Ok(until),
        _ => Err(ResponseError::InResponseTo),
    }
}
