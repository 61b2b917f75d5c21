//! The structural checks a `SAMLResponse` passes before any signature is verified (DESIGN
//! section 6): no DTD, a protocol `Response` root, a Success status, exactly one assertion as
//! its direct child, and signatures only where we expect them, each with exactly one
//! `Reference` to its parent element and only allowlisted algorithms. These refuse the XML
//! signature wrapping shapes (XSW1–XSW8) before xmlsec sees them.

use roxmltree::{Document, Node, ParsingOptions};

use super::verify::ResponseError;

pub const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

/// Signature algorithms accepted: RSA and ECDSA with SHA-256 or stronger.
const SIGNATURE_ALGS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const SHA1_SIGNATURE_ALGS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
];
const DIGEST_ALGS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
const SHA1_DIGEST: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// Canonicalizations and transforms; the `WithComments` variants are not among them, so a
/// comment inside signed text never splits what we read.
const TRANSFORMS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11",
];

/// What the structure says about a response, read from the raw document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub response_id: String,
    pub assertion_id: String,
    pub response_signed: bool,
    pub assertion_signed: bool,
    pub version: Option<String>,
    pub destination: Option<String>,
    pub in_response_to: Option<String>,
    pub issue_instant: Option<String>,
    pub issuer: Option<String>,
}

/// Parses `xml` (DTDs refused) and checks its shape.
pub fn check(xml: &str, allow_sha1: bool) -> Result<Shape, ResponseError> {
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(xml, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => ResponseError::Dtd,
        other => ResponseError::Xml(other.to_string().chars().take(160).collect()),
    })?;
    let root = doc.root_element();
    if !is(root, PROTOCOL_NS, "Response") {
        return Err(structure("the document is not a SAML protocol Response"));
    }
    check_status(root)?;
    let assertion = single_assertion(&doc, root)?;
    let response_signed = check_signatures(&doc, root, assertion, allow_sha1)?;
    let assertion_signed = signature_child(assertion).is_some();
    let issuer = children(root)
        .find(|n| is(*n, ASSERTION_NS, "Issuer"))
        .map(|n| n.text().unwrap_or_default().trim().to_owned());
    let attr = |name: &str| root.attribute(name).map(str::to_owned);
    Ok(Shape {
        response_id: attr("ID").ok_or_else(|| structure("the Response has no ID"))?,
        assertion_id: assertion
            .attribute("ID")
            .map(str::to_owned)
            .ok_or_else(|| structure("the Assertion has no ID"))?,
        response_signed,
        assertion_signed,
        version: attr("Version"),
        destination: attr("Destination"),
        in_response_to: attr("InResponseTo"),
        issue_instant: attr("IssueInstant"),
        issuer,
    })
}

fn structure(message: &str) -> ResponseError {
    ResponseError::Structure(message.to_owned())
}

fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

fn children<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// A non-Success status is the IdP's answer, reported as such (before any signature check:
/// IdPs often leave error responses unsigned, and a refusal grants nothing).
fn check_status(root: Node<'_, '_>) -> Result<(), ResponseError> {
    let status = children(root).find(|n| is(*n, PROTOCOL_NS, "Status"));
    let Some(status) = status else {
        return Err(structure("the Response has no Status"));
    };
    let code = children(status).find(|n| is(*n, PROTOCOL_NS, "StatusCode"));
    let value = code.and_then(|c| c.attribute("Value")).unwrap_or_default();
    if value == STATUS_SUCCESS {
        return Ok(());
    }
    let sub = code
        .and_then(|c| children(c).find(|n| is(*n, PROTOCOL_NS, "StatusCode")))
        .and_then(|c| c.attribute("Value"));
    let message = children(status)
        .find(|n| is(*n, PROTOCOL_NS, "StatusMessage"))
        .and_then(|n| n.text())
        .map(|t| t.trim().chars().take(200).collect::<String>());
    let short = |uri: &str| uri.rsplit(':').next().unwrap_or(uri).to_owned();
    Err(ResponseError::Status {
        code: short(value),
        detail: sub.map(short),
        message,
    })
}

/// Exactly one `Assertion` (by local name, in any namespace) in the whole document, in the
/// assertion namespace, a direct child of the root; no encrypted assertions; one `Response`.
fn single_assertion<'a, 'i>(
    doc: &'a Document<'i>,
    root: Node<'a, 'i>,
) -> Result<Node<'a, 'i>, ResponseError> {
    let named = |name: &'static str| {
        doc.descendants()
            .filter(move |n| n.is_element() && n.tag_name().name() == name)
    };
    if named("EncryptedAssertion").next().is_some() {
        return Err(structure("encrypted assertions are not supported"));
    }
    if named("Response").count() != 1 {
        return Err(structure("the document holds more than one Response"));
    }
    let assertions: Vec<Node<'a, 'i>> = named("Assertion").collect();
    let [assertion] = assertions.as_slice() else {
        return Err(ResponseError::AssertionCount(assertions.len()));
    };
    if !is(*assertion, ASSERTION_NS, "Assertion") || assertion.parent_element() != Some(root) {
        return Err(structure(
            "the Assertion is not a direct child of the Response",
        ));
    }
    Ok(*assertion)
}

fn signature_child<'a, 'i>(node: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    children(node).find(|n| is(*n, DSIG_NS, "Signature"))
}

/// Every `Signature` sits directly in the Response or the Assertion (at most one each), has
/// one Reference to its parent's ID and allowlisted algorithms. Returns whether the Response
/// itself is signed.
fn check_signatures(
    doc: &Document<'_>,
    root: Node<'_, '_>,
    assertion: Node<'_, '_>,
    allow_sha1: bool,
) -> Result<bool, ResponseError> {
    let signatures: Vec<Node<'_, '_>> = doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "Signature")
        .collect();
    let mut response_signed = false;
    for sig in &signatures {
        let parent = sig.parent_element();
        let on_root = parent == Some(root);
        if !is(*sig, DSIG_NS, "Signature") || !(on_root || parent == Some(assertion)) {
            return Err(structure(
                "a Signature sits outside the Response and the Assertion",
            ));
        }
        response_signed |= on_root;
        let Some(parent) = parent else {
            return Err(structure("a Signature has no parent"));
        };
        if children(parent)
            .filter(|n| is(*n, DSIG_NS, "Signature"))
            .count()
            != 1
        {
            return Err(structure("an element carries more than one Signature"));
        }
        check_signature(*sig, parent, allow_sha1)?;
    }
    Ok(response_signed)
}

fn check_signature(
    sig: Node<'_, '_>,
    parent: Node<'_, '_>,
    allow_sha1: bool,
) -> Result<(), ResponseError> {
    for child in children(sig) {
        let known = ["SignedInfo", "SignatureValue", "KeyInfo"]
            .iter()
            .any(|name| is(child, DSIG_NS, name));
        if !known {
            return Err(structure("a Signature holds an unexpected element"));
        }
    }
    let signed_info = children(sig)
        .find(|n| is(*n, DSIG_NS, "SignedInfo"))
        .ok_or_else(|| structure("a Signature has no SignedInfo"))?;
    let algorithm = |node: Option<Node<'_, '_>>| {
        node.and_then(|n| n.attribute("Algorithm"))
            .unwrap_or_default()
            .to_owned()
    };
    let c14n = algorithm(find(signed_info, "CanonicalizationMethod"));
    allowed(
        TRANSFORMS.contains(&c14n.as_str()),
        "canonicalization",
        &c14n,
    )?;
    let method = algorithm(find(signed_info, "SignatureMethod"));
    let ok = SIGNATURE_ALGS.contains(&method.as_str())
        || (allow_sha1 && SHA1_SIGNATURE_ALGS.contains(&method.as_str()));
    allowed(ok, "signature algorithm", &method)?;
    let references: Vec<Node<'_, '_>> = children(signed_info)
        .filter(|n| is(*n, DSIG_NS, "Reference"))
        .collect();
    let [reference] = references.as_slice() else {
        return Err(structure("a Signature must have exactly one Reference"));
    };
    let target = parent.attribute("ID").unwrap_or_default();
    if target.is_empty() || reference.attribute("URI") != Some(&format!("#{target}")) {
        return Err(structure(
            "a Signature's Reference does not point at the element that carries it",
        ));
    }
    if let Some(transforms) = find(*reference, "Transforms") {
        let list: Vec<Node<'_, '_>> = children(transforms).collect();
        if list.len() > 3 {
            return Err(structure("a Reference has too many transforms"));
        }
        for t in list {
            let uri = algorithm(Some(t));
            let ok = is(t, DSIG_NS, "Transform") && TRANSFORMS.contains(&uri.as_str());
            allowed(ok, "transform", &uri)?;
        }
    }
    let digest = algorithm(find(*reference, "DigestMethod"));
    let ok = DIGEST_ALGS.contains(&digest.as_str()) || (allow_sha1 && digest == SHA1_DIGEST);
    allowed(ok, "digest algorithm", &digest)
}

fn find<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    children(node).find(|c| is(*c, DSIG_NS, name))
}

fn allowed(ok: bool, what: &'static str, uri: &str) -> Result<(), ResponseError> {
    if ok {
        Ok(())
    } else {
        Err(ResponseError::Algorithm {
            what,
            uri: uri.chars().take(120).collect(),
        })
    }
}
