//! Messages we send: the AuthnRequest and the LogoutRequest over the HTTP-Redirect binding
//! (DEFLATE, base64, `RelayState`, and a detached RSA/ECDSA-SHA256 signature when signing is on),
//! and our SP metadata document.

use std::io::Write as _;

use base64::Engine as _;
use openssl::pkey::{PKey, Private};
use samael::crypto::sign_url;
use samael::key_info::{KeyInfo, X509Data};
use samael::metadata::{
    Endpoint, EntityDescriptor, IndexedEndpoint, KeyDescriptor, SpSsoDescriptor,
};
use samael::schema::{AuthnRequest, Issuer};
use samael::traits::ToXml;
use url::Url;

use super::metadata::HTTP_REDIRECT;
use super::SamlError;

const HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const ENTITY_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";

fn failed(what: &str) -> SamlError {
    SamlError::Message(format!("could not build the {what}"))
}

/// An xs:ID: a letter first, then 256 random bits in hex.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("_{hex}")
}

/// The IdP URL the browser is sent to for an AuthnRequest.
pub fn authn_request_url(
    sso: &Url,
    sp_entity_id: &str,
    acs_url: &str,
    request_id: &str,
    relay_state: &str,
    key: Option<&PKey<Private>>,
) -> Result<Url, SamlError> {
    let request = AuthnRequest {
        id: request_id.to_owned(),
        version: "2.0".to_owned(),
        issue_instant: chrono::Utc::now(),
        destination: Some(sso.to_string()),
        issuer: Some(Issuer {
            format: Some(ENTITY_FORMAT.to_owned()),
            value: Some(html_escape::encode_text(sp_entity_id).into_owned()),
            ..Issuer::default()
        }),
        assertion_consumer_service_url: Some(acs_url.to_owned()),
        protocol_binding: Some(HTTP_POST.to_owned()),
        ..AuthnRequest::default()
    };
    let url = match key {
        Some(key) => request.signed_redirect(relay_state, key),
        None => request.redirect(relay_state),
    };
    url.ok().flatten().ok_or_else(|| failed("AuthnRequest"))
}

/// The IdP URL for SP-initiated Single Logout of `name_id`.
pub struct LogoutRequest<'a> {
    pub slo: &'a Url,
    pub sp_entity_id: &'a str,
    pub name_id: &'a str,
    pub name_id_format: Option<&'a str>,
    pub session_index: Option<&'a str>,
    pub relay_state: &'a str,
}

impl LogoutRequest<'_> {
    /// The XML is written here (samael's LogoutRequest puts SessionIndex before NameID, which
    /// the schema forbids); every value is escaped.
    fn xml(&self, id: &str) -> String {
        let esc = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let format = self
            .name_id_format
            .map(|f| format!(" Format=\"{}\"", esc(f)))
            .unwrap_or_default();
        let session = self
            .session_index
            .map(|s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", esc(s)))
            .unwrap_or_default();
        format!(
            "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" \
IssueInstant=\"{now}\" Destination=\"{}\"><saml:Issuer>{}</saml:Issuer>\
<saml:NameID{format}>{}</saml:NameID>{session}</samlp:LogoutRequest>",
            esc(self.slo.as_str()),
            esc(self.sp_entity_id),
            esc(self.name_id),
        )
    }

    pub fn url(&self, key: Option<&PKey<Private>>) -> Result<Url, SamlError> {
        let xml = self.xml(&new_id());
        let mut deflated = Vec::new();
        {
            let mut encoder =
                flate2::write::DeflateEncoder::new(&mut deflated, flate2::Compression::default());
            encoder
                .write_all(xml.as_bytes())
                .map_err(|_| failed("LogoutRequest"))?;
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(&deflated);
        let mut url = self.slo.clone();
        url.query_pairs_mut()
            .append_pair("SAMLRequest", &encoded)
            .append_pair("RelayState", self.relay_state);
        match key {
            Some(key) => sign_url(url, key).map_err(|_| failed("signed LogoutRequest")),
            None => Ok(url),
        }
    }
}

/// Our SP metadata: entity id, the ACS (HTTP-POST), the SLO return (HTTP-Redirect), and the
/// signing certificate when requests are signed.
pub fn sp_metadata(
    entity_id: &str,
    acs_url: &str,
    signing_cert_der: Option<&[u8]>,
    want_assertions_signed: bool,
) -> Result<String, SamlError> {
    let key_descriptors = signing_cert_der.map(|der| {
        vec![KeyDescriptor {
            key_use: Some("signing".to_owned()),
            key_info: KeyInfo {
                id: None,
                x509_data: Some(X509Data {
                    certificates: vec![base64::engine::general_purpose::STANDARD.encode(der)],
                }),
            },
            encryption_methods: None,
        }]
    });
    let descriptor = SpSsoDescriptor {
        protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".to_owned()),
        key_descriptors,
        authn_requests_signed: Some(signing_cert_der.is_some()),
        want_assertions_signed: Some(want_assertions_signed),
        single_logout_services: Some(vec![Endpoint {
            binding: HTTP_REDIRECT.to_owned(),
            location: acs_url.to_owned(),
            response_location: None,
        }]),
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: HTTP_POST.to_owned(),
            location: acs_url.to_owned(),
            response_location: None,
            index: 0,
            is_default: Some(true),
        }],
        ..SpSsoDescriptor::default()
    };
    let entity = EntityDescriptor {
        entity_id: Some(entity_id.to_owned()),
        sp_sso_descriptors: Some(vec![descriptor]),
        ..EntityDescriptor::default()
    };
    entity.to_string().map_err(|_| failed("SP metadata"))
}

/// Inflates a redirect-binding message (for tests and diagnostics).
pub fn inflate(encoded: &str) -> Option<String> {
    use std::io::Read as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(bytes.as_slice())
        .take(1 << 20)
        .read_to_string(&mut out)
        .ok()?;
    Some(out)
}
