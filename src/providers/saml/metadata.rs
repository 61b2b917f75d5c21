//! IdP metadata: parsed with samael's metadata types after a DTD check, reduced to what a login
//! needs (entity id, signing certificates, SSO and SLO redirect endpoints). Metadata without a
//! signing certificate is refused: samael would silently skip signature checks without one.

use samael::crypto::{decode_x509_cert, CertificateDer};
use samael::metadata::{EntityDescriptor, EntityDescriptorType, KeyDescriptor};
use url::Url;

/// The SAML HTTP-Redirect binding.
pub const HTTP_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// What we use from the IdP's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// Certificates with `use="signing"` (or no `use`), DER.
    pub signing_certs: Vec<CertificateDer>,
    /// SingleSignOnService with the HTTP-Redirect binding.
    pub sso_redirect: Url,
    /// SingleLogoutService with the HTTP-Redirect binding, when offered.
    pub slo_redirect: Option<Url>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("the IdP metadata is not well-formed XML: {0}")]
    Xml(String),
    #[error("the IdP metadata contains a DTD; DTDs are never accepted")]
    Dtd,
    #[error("the IdP metadata is not a SAML EntityDescriptor: {0}")]
    Schema(String),
    #[error("the IdP metadata must describe exactly one identity provider (IDPSSODescriptor), found {0}")]
    IdpCount(usize),
    #[error("the IdP metadata has no entityID")]
    NoEntityId,
    #[error("the IdP metadata has no signing certificate (a KeyDescriptor use=\"signing\" with an X509Certificate); without one no response could be verified")]
    NoSigningCert,
    #[error("the IdP metadata has a signing certificate that is not a valid X.509 certificate")]
    BadCert,
    #[error("the IdP metadata has no SingleSignOnService with the HTTP-Redirect binding")]
    NoRedirectSso,
    #[error("the IdP metadata has an invalid {0} URL")]
    BadUrl(&'static str),
}

/// Parses IdP metadata (an `EntityDescriptor`, or an `EntitiesDescriptor` holding exactly one
/// IdP).
pub fn parse(xml: &str) -> Result<IdpMetadata, MetadataError> {
    reject_dtd(xml)?;
    let doc: EntityDescriptorType = xml
        .parse::<EntityDescriptorType>()
        .map_err(|e| MetadataError::Schema(short(&e.to_string())))
        .or_else(|_| {
            xml.parse::<EntityDescriptor>()
                .map(EntityDescriptorType::EntityDescriptor)
                .map_err(|e| MetadataError::Schema(short(&e.to_string())))
        })?;
    let idps: Vec<&EntityDescriptor> = doc
        .iter()
        .filter(|e| {
            e.idp_sso_descriptors
                .as_ref()
                .is_some_and(|d| !d.is_empty())
        })
        .collect();
    let [entity] = idps.as_slice() else {
        return Err(MetadataError::IdpCount(idps.len()));
    };
    let entity_id = entity
        .entity_id
        .clone()
        .filter(|e| !e.trim().is_empty())
        .ok_or(MetadataError::NoEntityId)?;
    let descriptors = entity.idp_sso_descriptors.as_deref().unwrap_or_default();
    let keys: Vec<&KeyDescriptor> = descriptors
        .iter()
        .flat_map(|d| &d.key_descriptors)
        .collect();
    let signing_certs = signing_certs(&keys)?;
    let endpoint = |list: Vec<&samael::metadata::Endpoint>, what| {
        list.into_iter()
            .find(|e| e.binding == HTTP_REDIRECT)
            .map(|e| Url::parse(e.location.trim()).map_err(|_| MetadataError::BadUrl(what)))
            .transpose()
    };
    let sso = descriptors.iter().flat_map(|d| &d.single_sign_on_services);
    let sso_redirect =
        endpoint(sso.collect(), "SingleSignOnService")?.ok_or(MetadataError::NoRedirectSso)?;
    let slo = descriptors.iter().flat_map(|d| &d.single_logout_services);
    let slo_redirect = endpoint(slo.collect(), "SingleLogoutService")?;
    Ok(IdpMetadata {
        entity_id,
        signing_certs,
        sso_redirect,
        slo_redirect,
    })
}

/// `use="signing"` keys, or keys without `use` when there is none marked for signing.
fn signing_certs(keys: &[&KeyDescriptor]) -> Result<Vec<CertificateDer>, MetadataError> {
    let marked: Vec<&&KeyDescriptor> = keys
        .iter()
        .filter(|k| k.key_use.as_deref() == Some("signing"))
        .collect();
    let chosen: Vec<&&KeyDescriptor> = if marked.is_empty() {
        keys.iter()
            .filter(|k| k.key_use.as_deref().is_none_or(|u| u.trim().is_empty()))
            .collect()
    } else {
        marked
    };
    let mut out = Vec::new();
    for key in chosen {
        let certs = key.key_info.x509_data.iter().flat_map(|d| &d.certificates);
        for text in certs {
            let cleaned: String = text.split_whitespace().collect();
            let der = decode_x509_cert(&cleaned).map_err(|_| MetadataError::BadCert)?;
            openssl::x509::X509::from_der(der.der_data()).map_err(|_| MetadataError::BadCert)?;
            out.push(der);
        }
    }
    if out.is_empty() {
        return Err(MetadataError::NoSigningCert);
    }
    Ok(out)
}

/// Any DTD (`<!DOCTYPE`) is refused before the document reaches a parser that might expand it.
pub fn reject_dtd(xml: &str) -> Result<(), MetadataError> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    match roxmltree::Document::parse_with_options(xml, options) {
        Ok(_) => Ok(()),
        Err(roxmltree::Error::DtdDetected) => Err(MetadataError::Dtd),
        Err(e) => Err(MetadataError::Xml(short(&e.to_string()))),
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "MIIBszCCAVmgAwIBAgIUY0Z9";

    fn doc(keys: &str) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.com">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {keys}
    <md:SingleLogoutService Binding="{HTTP_REDIRECT}" Location="https://idp.example.com/slo"/>
    <md:SingleSignOnService Binding="{HTTP_REDIRECT}" Location="https://idp.example.com/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
        )
    }

    #[test]
    fn metadata_without_a_signing_certificate_is_refused() {
        let enc = r#"<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#;
        assert_eq!(parse(&doc(enc)), Err(MetadataError::NoSigningCert));
        assert_eq!(parse(&doc("")), Err(MetadataError::NoSigningCert));
    }

    #[test]
    fn garbage_signing_certificate_is_refused() {
        let key = format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{CERT}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
        );
        assert_eq!(parse(&doc(&key)), Err(MetadataError::BadCert));
    }

    #[test]
    fn metadata_with_a_dtd_is_refused() {
        let xml = format!("<!DOCTYPE x [<!ENTITY a \"b\">]>{}", doc(""));
        assert_eq!(parse(&xml), Err(MetadataError::Dtd));
    }
}
