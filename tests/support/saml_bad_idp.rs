//! A misbehaving SAML IdP for negative tests: no server, only a key pair made at test time and a
//! builder that writes `SAMLResponse`s (valid by default) and signs them with xmlsec through
//! samael, so each test can break exactly one thing: unsigned, tampered, re-signed with another
//! key, XSW1–XSW8, two assertions, wrong audience/recipient/destination/issuer/InResponseTo,
//! expired, not yet valid, SHA-1, DTD, non-Success status, and so on.

use base64::Engine as _;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use samael::crypto::{Crypto, CryptoProvider};

pub const ENTITY_ID: &str = "https://bad-idp.test/metadata";
pub const SSO_URL: &str = "http://127.0.0.1:9/bad-idp/sso";
pub const SLO_URL: &str = "http://127.0.0.1:9/bad-idp/slo";

const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// An RSA key and a self-signed certificate for it.
pub struct KeyPair {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl KeyPair {
    pub fn generate(cn: &str) -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_u32(rand::random::<u32>() >> 1).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        KeyPair {
            key,
            cert: b.build(),
        }
    }

    /// A certificate that copies `genuine`'s subject, issuer, serial and validity but carries
    /// this key pair's public key, self-signed with this key: what an attacker puts in KeyInfo
    /// hoping the SP trusts a certificate that merely looks like the IdP's.
    pub fn clone_of(&self, genuine: &X509) -> X509 {
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(genuine.serial_number()).unwrap();
        b.set_subject_name(genuine.subject_name()).unwrap();
        b.set_issuer_name(genuine.issuer_name()).unwrap();
        b.set_pubkey(&self.key).unwrap();
        b.set_not_before(genuine.not_before()).unwrap();
        b.set_not_after(genuine.not_after()).unwrap();
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    /// The certificate as base64 DER (for metadata and KeyInfo).
    pub fn cert_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.cert.to_der().unwrap())
    }

    pub fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }

    pub fn key_pem(&self) -> String {
        String::from_utf8(self.key.private_key_to_pem_pkcs8().unwrap()).unwrap()
    }
}

/// Which algorithms a signature template names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Sha256,
    Sha1,
}

/// The IdP: its keys and metadata.
pub struct BadIdp {
    pub keys: KeyPair,
}

impl Default for BadIdp {
    fn default() -> Self {
        Self::new()
    }
}

impl BadIdp {
    pub fn new() -> Self {
        BadIdp {
            keys: KeyPair::generate("bad-idp"),
        }
    }

    /// IdP metadata with the signing certificate (or without any certificate).
    pub fn metadata(&self, with_signing_cert: bool) -> String {
        let key = if with_signing_cert {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                self.keys.cert_b64()
            )
        } else {
            String::new()
        };
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{ENTITY_ID}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{key}<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{SLO_URL}"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{SSO_URL}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
        )
    }
}

/// One response to write. `Default` is not used: start from [`ResponseSpec::valid`].
#[derive(Clone, Debug)]
pub struct ResponseSpec {
    pub response_id: String,
    pub assertion_id: String,
    /// `None`: unsolicited.
    pub in_response_to: Option<String>,
    /// Response@Destination (`None`: absent).
    pub destination: Option<String>,
    pub recipient: String,
    pub audience: Option<String>,
    pub issuer: String,
    /// Raw XML text of the NameID (not escaped, so a comment can be injected).
    pub name_id_raw: String,
    pub attributes: Vec<(String, Vec<String>)>,
    pub issue_instant: i64,
    pub not_before: i64,
    pub not_on_or_after: i64,
    /// SubjectConfirmationData@NotOnOrAfter (`None`: absent).
    pub scd_not_on_or_after: Option<i64>,
    /// SubjectConfirmationData@NotBefore (`None`: absent, as IdPs send it).
    pub scd_not_before: Option<i64>,
    pub status: String,
    pub sign_assertion: bool,
    pub sign_response: bool,
    pub alg: Alg,
}

fn now() -> i64 {
    super::util::now()
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn new_id() -> String {
    format!("_{}", super::util::random_string(32))
}

impl ResponseSpec {
    /// A valid response to AuthnRequest `request_id` for SP `sp_entity_id` at `acs`.
    pub fn valid(request_id: Option<&str>, sp_entity_id: &str, acs: &str, user: &str) -> Self {
        let t = now();
        ResponseSpec {
            response_id: new_id(),
            assertion_id: new_id(),
            in_response_to: request_id.map(str::to_owned),
            destination: Some(acs.to_owned()),
            recipient: acs.to_owned(),
            audience: Some(sp_entity_id.to_owned()),
            issuer: ENTITY_ID.to_owned(),
            name_id_raw: user.to_owned(),
            attributes: vec![
                ("email".into(), vec![format!("{user}@example.com")]),
                ("name".into(), vec![format!("User {user}")]),
                ("groups".into(), vec!["admins".into(), "users".into()]),
            ],
            issue_instant: t,
            not_before: t - 30,
            not_on_or_after: t + 300,
            scd_not_on_or_after: Some(t + 300),
            scd_not_before: None,
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".into(),
            sign_assertion: true,
            sign_response: false,
            alg: Alg::Sha256,
        }
    }

    /// An unsigned `<ds:Signature>` template whose Reference points at `#id`.
    pub fn signature_template(&self, id: &str) -> String {
        let (sig, digest) = match self.alg {
            Alg::Sha256 => (
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "http://www.w3.org/2001/04/xmlenc#sha256",
            ),
            Alg::Sha1 => (
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                "http://www.w3.org/2000/09/xmldsig#sha1",
            ),
        };
        format!(
            r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{sig}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>"##
        )
    }

    /// The assertion element, with a signature template when `sign_assertion`.
    pub fn assertion_xml(&self) -> String {
        let sig = if self.sign_assertion {
            self.signature_template(&self.assertion_id)
        } else {
            String::new()
        };
        let irt = self
            .in_response_to
            .as_ref()
            .map(|i| format!(r#" InResponseTo="{i}""#))
            .unwrap_or_default();
        let scd_until = self
            .scd_not_on_or_after
            .map(|t| format!(r#" NotOnOrAfter="{}""#, time(t)))
            .unwrap_or_default();
        let scd_from = self
            .scd_not_before
            .map(|t| format!(r#" NotBefore="{}""#, time(t)))
            .unwrap_or_default();
        let audience = self
            .audience
            .as_ref()
            .map(|a| format!("<saml:AudienceRestriction><saml:Audience>{a}</saml:Audience></saml:AudienceRestriction>"))
            .unwrap_or_default();
        let attrs: String = self
            .attributes
            .iter()
            .map(|(name, values)| {
                let vals: String = values
                    .iter()
                    .map(|v| format!("<saml:AttributeValue>{v}</saml:AttributeValue>"))
                    .collect();
                format!(r#"<saml:Attribute Name="{name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">{vals}</saml:Attribute>"#)
            })
            .collect();
        format!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{aid}" Version="2.0" IssueInstant="{ii}"><saml:Issuer>{issuer}</saml:Issuer>{sig}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{nameid}</saml:NameID><saml:SubjectConfirmation Method="{BEARER}"><saml:SubjectConfirmationData{scd_from}{scd_until} Recipient="{recipient}"{irt}/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{nb}" NotOnOrAfter="{noa}">{audience}</saml:Conditions><saml:AuthnStatement AuthnInstant="{ii}" SessionIndex="_session{aid}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>{attrs}</saml:AttributeStatement></saml:Assertion>"#,
            aid = self.assertion_id,
            ii = time(self.issue_instant),
            issuer = self.issuer,
            nameid = self.name_id_raw,
            recipient = self.recipient,
            nb = time(self.not_before),
            noa = time(self.not_on_or_after),
        )
    }

    /// The whole Response around `assertions` (already rendered, maybe signed).
    pub fn response_xml(&self, assertions: &str) -> String {
        let irt = self
            .in_response_to
            .as_ref()
            .map(|i| format!(r#" InResponseTo="{i}""#))
            .unwrap_or_default();
        let dest = self
            .destination
            .as_ref()
            .map(|d| format!(r#" Destination="{d}""#))
            .unwrap_or_default();
        let sig = if self.sign_response {
            self.signature_template(&self.response_id)
        } else {
            String::new()
        };
        format!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{rid}" Version="2.0" IssueInstant="{ii}"{dest}{irt}><saml:Issuer>{issuer}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>{assertions}</samlp:Response>"#,
            rid = self.response_id,
            ii = time(self.issue_instant),
            issuer = self.issuer,
            status = self.status,
        )
    }
}

/// Signs the first `<ds:Signature>` template in `xml` with `key` (xmlsec via samael).
pub fn sign_first(xml: &str, key: &PKey<Private>) -> String {
    let der = key.private_key_to_der().unwrap();
    let signed = Crypto::sign_xml(xml, &der).expect("xmlsec signs the template");
    strip_decl(&signed)
}

fn strip_decl(xml: &str) -> String {
    let xml = xml.trim();
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map(|(_, r)| r.trim().to_owned())
            .unwrap_or_default(),
        None => xml.to_owned(),
    }
}

/// The assertion, signed when the spec says so, as an XML fragment.
pub fn signed_assertion(spec: &ResponseSpec, key: &PKey<Private>) -> String {
    let xml = spec.assertion_xml();
    if spec.sign_assertion {
        sign_first(&xml, key)
    } else {
        xml
    }
}

/// The whole response, signed as the spec says (assertion first, then the response).
pub fn build(spec: &ResponseSpec, key: &PKey<Private>) -> String {
    let assertion = signed_assertion(spec, key);
    let xml = spec.response_xml(&assertion);
    if spec.sign_response {
        sign_first(&xml, key)
    } else {
        xml
    }
}

/// `xml` with a `<ds:KeyInfo>` holding `cert` added to its first signature.
pub fn with_key_info(xml: &str, cert: &X509) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.to_der().unwrap());
    let key_info = format!(
        "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"
    );
    xml.replacen("</ds:Signature>", &key_info, 1)
}

/// Base64 for the form post.
pub fn encode(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}

/// The element `<tag ...>...</tag>` starting at the first `<prefix:Signature` / any tag, as a
/// string range: used to cut signatures and assertions out of signed XML.
pub fn element_range(xml: &str, open: &str, close: &str) -> std::ops::Range<usize> {
    let start = xml.find(open).expect("element start");
    let end = xml[start..].find(close).expect("element end") + start + close.len();
    start..end
}

/// `xml` without its first `ds:Signature` element.
pub fn remove_first_signature(xml: &str) -> String {
    let r = element_range(xml, "<ds:Signature", "</ds:Signature>");
    format!("{}{}", &xml[..r.start], &xml[r.end..])
}
