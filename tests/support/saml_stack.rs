//! SAML test set-ups: echo upstream + the proxy with a SAML connection, and the two halves of
//! an SP-initiated login driven by hand (start at the proxy and read the AuthnRequest; post a
//! `SAMLResponse` to the ACS), so negative tests can post any response they build.

use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

use super::browser::{Browser, Page};
use super::echo::EchoUpstream;
use super::proxy::{spawn_proxy_with, Proxy};
use super::stack::test_certificate;
use super::util::{free_port, random_string};

pub struct SamlStack {
    pub proxy: Proxy,
    pub echo: EchoUpstream,
    pub config: Value,
    pub public_url: String,
    /// With [`SamlStack::start_https`]: the certificate's PEM, and the directory holding its files.
    pub tls: Option<(String, tempfile::TempDir)>,
}

/// A SAML connection block.
pub fn saml_provider(display_name: &str, idp_metadata: &str) -> Value {
    json!({
        "protocol": "saml",
        "provider": "custom",
        "display_name": display_name,
        "idp_metadata": idp_metadata,
        "groups": { "enabled": true, "admins": ["admins"] },
    })
}

impl SamlStack {
    /// Echo upstream + proxy on `port` (0: a free one) with `providers`; `tweak` edits the
    /// config before start. Waits for readiness.
    pub async fn start(port: u16, providers: Value, tweak: impl FnOnce(&mut Value)) -> Self {
        Self::start_scheme(port, providers, false, tweak).await
    }

    /// As [`start`](Self::start), serving HTTPS (`tls:` with a test-time certificate for
    /// 127.0.0.1 and localhost) with an `https://127.0.0.1:<port>` public URL.
    pub async fn start_https(port: u16, providers: Value, tweak: impl FnOnce(&mut Value)) -> Self {
        Self::start_scheme(port, providers, true, tweak).await
    }

    async fn start_scheme(
        port: u16,
        providers: Value,
        https: bool,
        tweak: impl FnOnce(&mut Value),
    ) -> Self {
        let echo = EchoUpstream::start();
        let port = if port == 0 { free_port() } else { port };
        let scheme = if https { "https" } else { "http" };
        let public_url = format!("{scheme}://127.0.0.1:{port}");
        let mut config = json!({
            "listen": format!("127.0.0.1:{port}"),
            "upstream": echo.url,
            "public_url": public_url,
            "session": { "secret": random_string(48) },
            "log": { "level": "debug" },
            "providers": providers,
        });
        let tls = https.then(|| {
            let (block, pem, dir) = test_certificate();
            config["tls"] = block;
            (pem, dir)
        });
        tweak(&mut config);
        let yaml = serde_yaml::to_string(&config).expect("yaml");
        let proxy = spawn_proxy_with(&yaml, true).await;
        SamlStack {
            proxy,
            echo,
            config,
            public_url,
            tls,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.proxy.url(path)
    }

    /// Our SP entity id for connection `id` (the default).
    pub fn entity_id(&self, id: &str) -> String {
        format!("{}/_sso/saml/{id}/metadata", self.public_url)
    }

    pub fn acs(&self, id: &str) -> String {
        format!("{}/callback_{id}", self.public_url)
    }

    /// Starts a login at connection `id`: returns the IdP redirect URL, the AuthnRequest XML,
    /// its ID and the RelayState.
    pub async fn begin(&self, browser: &Browser, id: &str) -> Begun {
        let page = browser
            .navigate(&self.url(&format!("/_sso/login?provider={id}&rd=/after")))
            .await;
        assert_eq!(page.status.as_u16(), 302, "login start: {}", page.body);
        let location = page.location().expect("IdP redirect");
        let get = |name: &str| {
            location
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let request_xml =
            sso_proxy::providers::saml::request::inflate(&get("SAMLRequest").expect("SAMLRequest"))
                .expect("deflated AuthnRequest");
        let doc = roxmltree::Document::parse(&request_xml).expect("AuthnRequest XML");
        let request_id = doc.root_element().attribute("ID").expect("ID").to_owned();
        Begun {
            relay_state: get("RelayState").expect("RelayState"),
            request_id,
            request_xml,
            location,
            set_cookies: page.header_all("set-cookie"),
        }
    }

    /// Posts a `SAMLResponse` (base64) with `relay_state` to the ACS of `id`, as the browser.
    pub async fn post_acs(
        &self,
        browser: &Browser,
        id: &str,
        saml_response: &str,
        relay_state: Option<&str>,
    ) -> Page {
        let mut form = vec![("SAMLResponse", saml_response.to_owned())];
        if let Some(r) = relay_state {
            form.push(("RelayState", r.to_owned()));
        }
        browser
            .send(
                browser
                    .nav(Method::POST, &self.url(&format!("/callback_{id}")))
                    .header("origin", "null")
                    .form(&form),
            )
            .await
    }

    /// Whether `browser` has a session: `/_sso/userinfo` answers 200.
    pub async fn has_session(&self, browser: &Browser) -> bool {
        browser
            .api_get(&self.url("/_sso/userinfo"))
            .await
            .status
            .as_u16()
            == 200
    }
}

/// The first half of an SP-initiated login.
pub struct Begun {
    pub relay_state: String,
    pub request_id: String,
    pub request_xml: String,
    pub location: Url,
    pub set_cookies: Vec<String>,
}
