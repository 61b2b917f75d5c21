//! SAML end to end against a real IdP: SimpleSAMLphp under `php -S`, its metadata fetched by
//! the proxy from its URL, signed AuthnRequests (the IdP is configured to refuse unsigned
//! ones), identity headers at the upstream, groups → admin, SP metadata and Single Logout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::json;
use support::browser::Browser;
use support::saml_bad_idp::{self, BadIdp, KeyPair, ResponseSpec};
use support::saml_idp::{self, SimpleSamlIdp, SpEntry};
use support::saml_stack::{saml_provider, SamlStack};
use support::util::free_port;

struct Setup {
    idp: SimpleSamlIdp,
    stack: SamlStack,
}

/// SimpleSAMLphp + the proxy with connection `ssp` (signed requests when `sign`; the IdP
/// then requires them).
async fn setup(sign: bool) -> Setup {
    setup_with(sign, sign).await
}

/// SimpleSAMLphp (requiring signed AuthnRequests from our SP when `idp_requires_signing`) + the
/// proxy with connection `ssp` (signing them when `proxy_signs`).
async fn setup_with(idp_requires_signing: bool, proxy_signs: bool) -> Setup {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let sp_keys = KeyPair::generate("sso-proxy-sp");
    let sp = SpEntry {
        entity_id: format!("{public}/_sso/saml/ssp/metadata"),
        acs: format!("{public}/callback_ssp"),
        signing_cert_pem: idp_requires_signing.then(|| sp_keys.cert_pem()),
        ..SpEntry::default()
    };
    let idp = SimpleSamlIdp::start(&sp).await;
    let mut provider = saml_provider("SimpleSAMLphp", &idp.metadata_url);
    provider["claims"] = json!({
        "name": "displayName",
        "given_name": "givenName",
        "preferred_username": "uid",
    });
    if proxy_signs {
        provider["sign_requests"] = json!(true);
        provider["sp_private_key"] = json!(sp_keys.key_pem());
        provider["sp_certificate"] = json!(sp_keys.cert_pem());
    }
    let stack = SamlStack::start(port, json!({ "ssp": provider }), |_| {}).await;
    Setup { idp, stack }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_login_through_simplesamlphp_reaches_the_upstream_with_identity_headers() {
    let Setup { idp, stack } = setup(true).await;
    let browser = Browser::new();
    let login = saml_idp::login(
        &browser,
        stack.url("").as_str(),
        "ssp",
        "alice",
        Some("/dashboard?x=1"),
    )
    .await;
    let target = login.expect_success();
    assert_eq!(target.path(), "/dashboard");
    assert_eq!(target.query(), Some("x=1"));
    // The AuthnRequest was signed (detached redirect-binding signature) and the IdP, which
    // requires signed requests for this SP, accepted it.
    let first = login.trail.first().cloned().unwrap_or_default();
    assert!(first.contains("/_sso/login"), "{first}");
    let log = saml_idp::idp_log(&idp);
    assert!(!log.contains("Unable to validate Signature"), "{log}");

    let page = browser.navigate(target.as_str()).await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.body);
    let seen = stack.echo.last();
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-groups"), Some("admins,users"));
    assert_eq!(seen.header("x-forwarded-name"), Some("Alice Admin"));
    assert_eq!(seen.header("x-forwarded-preferred-username"), Some("alice"));
    let info = browser.api_get(&stack.url("/_sso/userinfo")).await.json();
    assert_eq!(info["admin"], json!(true));
    assert_eq!(info["provider"], json!("ssp"));
    assert_eq!(info["given_name"], json!("Alice"));
}

/// A preset connection against SimpleSAMLphp set up to send the attribute names that preset's
/// IdP sends (copies and renames of its users' `uid`, `email`, `displayName`, `givenName`,
/// `groups`); the connection sets no `claims.*`, so the preset's names are the only ones used.
async fn preset_setup(
    preset: &str,
    copies: &[(&str, &str)],
    renames: &[(&str, &str)],
    nameid_email: bool,
) -> (SimpleSamlIdp, SamlStack) {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let own = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let sp = SpEntry {
        entity_id: format!("{public}/_sso/saml/ssp/metadata"),
        acs: format!("{public}/callback_ssp"),
        attribute_copies: own(copies),
        attribute_renames: own(renames),
        nameid_email,
        ..SpEntry::default()
    };
    let idp = SimpleSamlIdp::start(&sp).await;
    let mut provider = saml_provider("Preset IdP", &idp.metadata_url);
    provider["provider"] = json!(preset);
    provider["groups"] = json!({ "enabled": true, "admins": ["admins"] });
    let stack = SamlStack::start(port, json!({ "ssp": provider }), |_| {}).await;
    (idp, stack)
}

async fn assert_preset_identity(stack: &SamlStack, username: Option<&str>) {
    let browser = Browser::new();
    saml_idp::login(&browser, &stack.url(""), "ssp", "alice", None)
        .await
        .expect_success();
    let info = browser.api_get(&stack.url("/_sso/userinfo")).await.json();
    assert_eq!(info["email"], json!("alice@example.com"), "{info}");
    assert_eq!(info["name"], json!("Alice Admin"), "{info}");
    assert_eq!(info["given_name"], json!("Alice"), "{info}");
    assert_eq!(info["groups"], json!(["admins", "users"]), "{info}");
    assert_eq!(info["admin"], json!(true), "{info}");
    if let Some(username) = username {
        assert_eq!(info["preferred_username"], json!(username), "{info}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_microsoft_ad_preset_reads_the_claim_uris_adfs_sends() {
    let (_idp, stack) = preset_setup(
        "microsoft_ad",
        &[(
            "uid",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        )],
        &[
            (
                "email",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            ),
            (
                "displayName",
                "http://schemas.microsoft.com/identity/claims/displayname",
            ),
            (
                "givenName",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
            ),
            (
                "groups",
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
            ),
        ],
        false,
    )
    .await;
    assert_preset_identity(&stack, Some("alice")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_jumpcloud_preset_reads_jumpclouds_attribute_names() {
    let (_idp, stack) = preset_setup(
        "jumpcloud",
        &[("uid", "username")],
        &[
            ("displayName", "name"),
            ("givenName", "firstname"),
            ("groups", "memberOf"),
        ],
        false,
    )
    .await;
    assert_preset_identity(&stack, Some("alice")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_duo_preset_reads_duos_attribute_names() {
    let (_idp, stack) = preset_setup(
        "duo",
        &[("uid", "Username")],
        &[
            ("email", "Email"),
            ("displayName", "DisplayName"),
            ("givenName", "FirstName"),
        ],
        false,
    )
    .await;
    assert_preset_identity(&stack, Some("alice")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_google_preset_reads_the_email_nameid_and_mapped_attributes() {
    // Google Workspace: the primary email as NameID, firstName/lastName/groups as mapped in
    // the app's attribute mapping (README).
    let (_idp, stack) = preset_setup(
        "google",
        &[],
        &[("displayName", "name"), ("givenName", "firstName")],
        true,
    )
    .await;
    assert_preset_identity(&stack, Some("alice@example.com")).await;
}

/// The control for the signed-request tests: the IdP that requires signed AuthnRequests from
/// our SP refuses an unsigned one, so the login never gets a response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_idp_requiring_signed_requests_refuses_an_unsigned_one() {
    let Setup { idp, stack } = setup_with(true, false).await;
    let browser = Browser::new();
    let login = saml_idp::login(&browser, &stack.url(""), "ssp", "alice", None).await;
    assert!(login.saml_response.is_none(), "{:?}", login.trail);
    assert!(!login.succeeded());
    assert!(!stack.has_session(&browser).await);
    let log = saml_idp::idp_log(&idp);
    assert!(
        log.contains("no signature found on message"),
        "the IdP did not refuse for the signature: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_groups_map_admin_only_for_admin_group_members() {
    let Setup { idp: _idp, stack } = setup(true).await;
    for (user, admin, groups) in [("bob", false, "users"), ("carol", false, "")] {
        let browser = Browser::new();
        let target = saml_idp::login(&browser, &stack.url(""), "ssp", user, None)
            .await
            .expect_success();
        assert_eq!(target.path(), "/");
        let info = browser.api_get(&stack.url("/_sso/userinfo")).await.json();
        assert_eq!(info["user"], json!(user));
        assert_eq!(info["admin"], json!(admin), "{user}");
        browser.navigate(&stack.url("/app")).await;
        let seen = stack.echo.last();
        assert_eq!(
            seen.header("x-forwarded-groups").unwrap_or_default(),
            groups,
            "{user}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_login_without_request_signing_works_too() {
    let Setup { idp: _idp, stack } = setup(false).await;
    let browser = Browser::new();
    let begun = stack.begin(&browser, "ssp").await;
    assert!(begun.location.query_pairs().all(|(k, _)| k != "Signature"));
    let browser = Browser::new();
    saml_idp::login(&browser, &stack.url(""), "ssp", "bob", None)
        .await
        .expect_success();
    assert!(stack.has_session(&browser).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_single_logout_ends_the_session_here_and_at_the_idp() {
    let Setup { idp, stack } = setup(true).await;
    let browser = Browser::new();
    saml_idp::login(&browser, &stack.url(""), "ssp", "alice", None)
        .await
        .expect_success();
    assert!(stack.has_session(&browser).await);
    let page = browser
        .send(
            browser
                .nav(reqwest::Method::POST, &stack.url("/_sso/logout"))
                .header("origin", stack.public_url.clone())
                .form(&[("rd", "/bye")]),
        )
        .await;
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);
    let slo = page.location().expect("SLO redirect");
    assert!(slo.as_str().starts_with(&idp.base), "{slo}");
    let params: Vec<String> = slo.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert!(
        params.contains(&"SAMLRequest".to_owned()) && params.contains(&"Signature".to_owned()),
        "{params:?}"
    );
    assert!(!stack.has_session(&browser).await);
    // The IdP processes the (signed) LogoutRequest and sends the browser back to our SLO
    // return, which lands on the `rd` target.
    let callback = stack.acs("ssp");
    let mut page = browser.navigate(slo.as_str()).await;
    for _ in 0..10 {
        if page.url.as_str().starts_with(&callback) || !page.is_redirect() {
            break;
        }
        page = browser
            .navigate(page.location().expect("location").as_str())
            .await;
    }
    assert!(
        page.url.as_str().starts_with(&callback),
        "{}",
        page.describe()
    );
    assert_eq!(page.status.as_u16(), 303);
    assert_eq!(page.header("location"), Some("/bye"));
    // A new login at the IdP asks for the password again: the IdP session is gone.
    let again = saml_idp::login(&browser, &stack.url(""), "ssp", "alice", None).await;
    assert!(
        again
            .trail
            .iter()
            .any(|t| t.contains("POST") && t.contains("loginuserpass")),
        "{:?}",
        again.trail
    );
}

/// Logs `browser` in at connection `bad` of `stack` (a valid response from `idp`), then posts
/// the logout form; returns the logout page.
async fn login_then_logout(
    stack: &SamlStack,
    idp: &BadIdp,
    browser: &Browser,
) -> support::browser::Page {
    let begun = stack.begin(browser, "bad").await;
    let spec = ResponseSpec::valid(
        Some(&begun.request_id),
        &stack.entity_id("bad"),
        &stack.acs("bad"),
        "bob",
    );
    let encoded = saml_bad_idp::encode(&saml_bad_idp::build(&spec, &idp.keys.key));
    let page = stack
        .post_acs(browser, "bad", &encoded, Some(&begun.relay_state))
        .await;
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);
    assert!(stack.has_session(browser).await);
    browser
        .send(
            browser
                .nav(reqwest::Method::POST, &stack.url("/_sso/logout"))
                .header("origin", stack.public_url.clone())
                .form(&[("rd", "/bye")]),
        )
        .await
}

/// Without an SLO endpoint in the IdP metadata, logout ends the session here and goes straight
/// to `rd`; with one (the control), it goes on to the IdP.
#[tokio::test]
async fn saml_logout_without_an_idp_slo_endpoint_stays_local() {
    let idp = BadIdp::new();
    let with_slo = idp.metadata(true);
    let slo = saml_bad_idp::element_range(&with_slo, "<md:SingleLogoutService", "/>");
    let without_slo = format!("{}{}", &with_slo[..slo.start], &with_slo[slo.end..]);
    assert!(!without_slo.contains("SingleLogoutService"));
    let stack =
        SamlStack::start(0, json!({ "bad": saml_provider("Bad", &with_slo) }), |_| {}).await;
    let browser = Browser::new();
    let page = login_then_logout(&stack, &idp, &browser).await;
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);
    let location = page.header("location").unwrap_or_default();
    assert!(location.starts_with(saml_bad_idp::SLO_URL), "{location}");
    let stack = SamlStack::start(
        0,
        json!({ "bad": saml_provider("Bad", &without_slo) }),
        |_| {},
    )
    .await;
    let browser = Browser::new();
    let page = login_then_logout(&stack, &idp, &browser).await;
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);
    assert_eq!(page.header("location"), Some("/bye"));
    assert!(!stack.has_session(&browser).await);
}

#[tokio::test]
async fn saml_sp_metadata_lists_entity_acs_and_signing_certificate() {
    let idp = BadIdp::new();
    let sp = KeyPair::generate("sp");
    let mut provider = saml_provider("Bad", &idp.metadata(true));
    provider["sign_requests"] = json!(true);
    provider["sp_private_key"] = json!(sp.key_pem());
    provider["sp_certificate"] = json!(sp.cert_pem());
    let stack = SamlStack::start(0, json!({ "bad": provider }), |_| {}).await;
    let page = Browser::new()
        .api_get(&stack.url("/_sso/saml/bad/metadata"))
        .await;
    assert_eq!(page.status.as_u16(), 200);
    assert_eq!(
        page.header("content-type"),
        Some("application/samlmetadata+xml")
    );
    let doc = roxmltree::Document::parse(&page.body).expect("metadata XML");
    let root = doc.root_element();
    assert_eq!(
        root.attribute("entityID"),
        Some(stack.entity_id("bad").as_str())
    );
    let acs = doc
        .descendants()
        .find(|n| n.tag_name().name() == "AssertionConsumerService")
        .expect("ACS");
    assert_eq!(acs.attribute("Location"), Some(stack.acs("bad").as_str()));
    assert_eq!(
        acs.attribute("Binding"),
        Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    );
    let cert = doc
        .descendants()
        .find(|n| n.tag_name().name() == "X509Certificate")
        .and_then(|n| n.text())
        .expect("signing certificate");
    assert_eq!(cert.trim(), sp.cert_b64());
    let descriptor = sp_descriptor(&doc);
    assert_eq!(descriptor.attribute("AuthnRequestsSigned"), Some("true"));
    assert_eq!(descriptor.attribute("WantAssertionsSigned"), Some("true"));
    let unknown = Browser::new()
        .api_get(&stack.url("/_sso/saml/nope/metadata"))
        .await;
    assert_eq!(unknown.status.as_u16(), 404);
}

fn sp_descriptor<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> roxmltree::Node<'a, 'i> {
    doc.descendants()
        .find(|n| n.tag_name().name() == "SPSSODescriptor")
        .expect("SPSSODescriptor")
}

/// With signing off, no certificate is published even when one is configured, and the
/// metadata says requests are unsigned; the IdP has an SLO endpoint, so ours is listed (the
/// LogoutResponse comes back to the callback URL); `require_signed_assertions: false` shows.
#[tokio::test]
async fn saml_sp_metadata_without_signing_has_no_key_and_lists_slo() {
    let idp = BadIdp::new();
    let sp = KeyPair::generate("sp");
    let mut provider = saml_provider("Bad", &idp.metadata(true));
    provider["sign_requests"] = json!(false);
    provider["require_signed_assertions"] = json!(false);
    provider["sp_private_key"] = json!(sp.key_pem());
    provider["sp_certificate"] = json!(sp.cert_pem());
    let stack = SamlStack::start(0, json!({ "bad": provider }), |_| {}).await;
    let page = Browser::new()
        .api_get(&stack.url("/_sso/saml/bad/metadata"))
        .await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(!page.body.contains(&sp.cert_b64()), "{}", page.body);
    let doc = roxmltree::Document::parse(&page.body).expect("metadata XML");
    for name in ["KeyDescriptor", "X509Certificate"] {
        assert!(
            !doc.descendants().any(|n| n.tag_name().name() == name),
            "{name} published with signing off: {}",
            page.body
        );
    }
    let descriptor = sp_descriptor(&doc);
    assert_eq!(descriptor.attribute("AuthnRequestsSigned"), Some("false"));
    assert_eq!(descriptor.attribute("WantAssertionsSigned"), Some("false"));
    let slo = doc
        .descendants()
        .find(|n| n.tag_name().name() == "SingleLogoutService")
        .expect("SingleLogoutService");
    assert_eq!(slo.attribute("Location"), Some(stack.acs("bad").as_str()));
    assert_eq!(
        slo.attribute("Binding"),
        Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect")
    );
}

#[tokio::test]
async fn saml_connection_is_listed_in_the_chooser_next_to_others() {
    let idp = BadIdp::new();
    let providers = json!({
        "zeta": saml_provider("Zeta SAML", &idp.metadata(true)),
        "alpha": saml_provider("Alpha SAML", &idp.metadata(true)),
    });
    let stack = SamlStack::start(0, providers, |_| {}).await;
    let page = Browser::new().navigate(&stack.url("/_sso/login")).await;
    assert_eq!(page.status.as_u16(), 200);
    let a = page.body.find("Alpha SAML").expect("alpha listed");
    let z = page.body.find("Zeta SAML").expect("zeta listed");
    assert!(a < z, "sorted by display name");
}

#[tokio::test]
async fn saml_pending_cookie_is_samesite_none_secure_on_https_and_lax_on_http() {
    let idp = BadIdp::new();
    let providers = json!({ "bad": saml_provider("Bad", &idp.metadata(true)) });
    let http = SamlStack::start(0, providers.clone(), |_| {}).await;
    let begun = http.begin(&Browser::new(), "bad").await;
    let cookie = begun
        .set_cookies
        .iter()
        .find(|c| c.contains("_st_"))
        .expect("pending cookie");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let https = SamlStack::start(0, providers, |c| {
        c["public_url"] = json!("https://app.example.com");
    })
    .await;
    let page = Browser::new()
        .navigate(&https.url("/_sso/login?provider=bad"))
        .await;
    let cookie = page
        .header_all("set-cookie")
        .into_iter()
        .find(|c| c.contains("_st_"))
        .expect("pending cookie");
    assert!(
        cookie.contains("SameSite=None") && cookie.contains("Secure"),
        "{cookie}"
    );
    let location = page.location().expect("IdP redirect");
    let request = sso_proxy::providers::saml::request::inflate(
        &location
            .query_pairs()
            .find(|(k, _)| k == "SAMLRequest")
            .expect("SAMLRequest")
            .1,
    )
    .expect("AuthnRequest");
    assert!(
        request.contains("AssertionConsumerServiceURL=\"https://app.example.com/callback_bad\""),
        "{request}"
    );
}
