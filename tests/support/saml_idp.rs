//! A real SAML IdP for the happy path: Debian's SimpleSAMLphp (1.19) served by `php -S` on
//! 127.0.0.1, with its config, users (alice, bob, carol via `exampleauth:UserPass`), signing key
//! and SP metadata written into a temp dir at test time (`SIMPLESAMLPHP_CONFIG_DIR`), plus a
//! scripted browser login through it (proxy → IdP login form → auto-posted SAMLResponse → ACS).
//!
//! Needs `apt-get install simplesamlphp php-cli php-xml`. `available()` says whether it is
//! installed so tests can fail with a clear message.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use url::Url;

use super::browser::{Browser, Page};
use super::html;
use super::saml_bad_idp::KeyPair;
use super::util::{free_port, random_string};

pub const SSP_WWW: &str = "/usr/share/simplesamlphp/www";

/// Whether SimpleSAMLphp and PHP are installed.
pub fn available() -> bool {
    Path::new(SSP_WWW).is_dir()
        && Command::new("php")
            .arg("-r")
            .arg("exit(class_exists('DOMDocument') ? 0 : 1);")
            .status()
            .is_ok_and(|s| s.success())
}

/// The SP as the IdP knows it.
#[derive(Clone, Debug, Default)]
pub struct SpEntry {
    pub entity_id: String,
    pub acs: String,
    /// PEM certificate: AuthnRequests and LogoutRequests must be signed with its key.
    pub signing_cert_pem: Option<String>,
    /// Attributes sent to this SP under another name as well (`core:AttributeCopy`), as an
    /// IdP set up for a given SP does.
    pub attribute_copies: Vec<(String, String)>,
    /// Attributes sent to this SP under another name only (`core:AttributeMap`).
    pub attribute_renames: Vec<(String, String)>,
    /// The NameID is the user's email (format emailAddress), as Google Workspace sends it;
    /// otherwise the persistent `uid`.
    pub nameid_email: bool,
}

pub struct SimpleSamlIdp {
    pub port: u16,
    pub base: String,
    /// `<base>/saml2/idp/metadata.php`: the entity id and the metadata URL.
    pub metadata_url: String,
    pub keys: KeyPair,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for SimpleSamlIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("log/simplesamlphp.log"))
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("---- SimpleSAMLphp log (tail) ----");
            for l in &lines[lines.len().saturating_sub(60)..] {
                eprintln!("{l}");
            }
        }
    }
}

fn php_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn user(name: &str, display: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| php_str(g)).collect();
    format!(
        "  '{name}:{name}-pw' => ['uid' => ['{name}'], 'email' => ['{name}@example.com'], 'displayName' => [{}], 'givenName' => [{}], 'groups' => [{}]],\n",
        php_str(display),
        php_str(display.split(' ').next().unwrap_or(display)),
        groups.join(", ")
    )
}

impl SimpleSamlIdp {
    /// Writes the configuration for `sp` and starts `php -S`; waits until the metadata answers.
    pub async fn start(sp: &SpEntry) -> Self {
        Self::start_at(sp, "127.0.0.1").await
    }

    /// As [`start`](Self::start), with `host` (e.g. `localhost`, another site than the proxy's
    /// `127.0.0.1`) in the IdP's base URL, entity id and endpoints; `php -S` still listens on
    /// 127.0.0.1.
    pub async fn start_at(sp: &SpEntry, host: &str) -> Self {
        assert!(
            available(),
            "SimpleSAMLphp is not installed: apt-get install -y simplesamlphp php-cli php-xml"
        );
        let port = free_port();
        let base = format!("http://{host}:{port}");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        for sub in [
            "config", "metadata", "cert", "tmp", "log", "data", "sessions",
        ] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        let keys = KeyPair::generate("simplesamlphp-test-idp");
        std::fs::write(d.join("cert/idp.key"), keys.key_pem()).expect("key");
        std::fs::write(d.join("cert/idp.crt"), keys.cert_pem()).expect("cert");
        std::fs::write(d.join("config/config.php"), config_php(d, &base)).expect("config");
        std::fs::write(d.join("config/authsources.php"), authsources_php()).expect("auth");
        std::fs::write(d.join("metadata/saml20-idp-hosted.php"), IDP_HOSTED).expect("idp");
        std::fs::write(d.join("metadata/saml20-sp-remote.php"), sp_remote_php(sp)).expect("sp");
        let child = Command::new("php")
            .arg("-S")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-t")
            .arg(SSP_WWW)
            .env("SIMPLESAMLPHP_CONFIG_DIR", d.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn php -S");
        let idp = SimpleSamlIdp {
            port,
            metadata_url: format!("{base}/saml2/idp/metadata.php"),
            base,
            keys,
            child,
            dir,
        };
        idp.wait_ready().await;
        idp
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(&self.metadata_url).send().await {
                let body = r.text().await.unwrap_or_default();
                if body.contains("IDPSSODescriptor") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "SimpleSAMLphp did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn config_php(d: &Path, base: &str) -> String {
    let p = |sub: &str| php_str(&format!("{}/", d.join(sub).display()));
    format!(
        r#"<?php
$config = [
  'baseurlpath' => {base},
  'certdir' => {cert},
  'loggingdir' => {log},
  'datadir' => {data},
  'tempdir' => {tmp},
  'metadatadir' => {metadata},
  'secretsalt' => {salt},
  'auth.adminpassword' => {admin},
  'technicalcontact_name' => 'Test',
  'technicalcontact_email' => 'test@example.org',
  'timezone' => 'UTC',
  'enable.saml20-idp' => true,
  'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],
  'logging.level' => SimpleSAML\Logger::DEBUG,
  'logging.handler' => 'file',
  'logging.logfile' => 'simplesamlphp.log',
  'store.type' => 'phpsession',
  'session.phpsession.savepath' => {sessions},
  'session.cookie.secure' => false,
  'session.cookie.samesite' => null,
  'language.cookie.secure' => false,
  'language.cookie.samesite' => null,
  'production' => true,
  'showerrors' => true,
  'metadata.sources' => [['type' => 'flatfile']],
];
"#,
        base = php_str(&format!("{base}/")),
        cert = p("cert"),
        log = p("log"),
        data = p("data"),
        tmp = p("tmp"),
        metadata = p("metadata"),
        sessions = php_str(&d.join("sessions").display().to_string()),
        salt = php_str(&random_string(32)),
        admin = php_str(&random_string(24)),
    )
}

fn authsources_php() -> String {
    let mut users = String::new();
    users.push_str(&user("alice", "Alice Admin", &["admins", "users"]));
    users.push_str(&user("bob", "Bob User", &["users"]));
    users.push_str(&user("carol", "Carol Guest", &[]));
    format!(
        "<?php\n$config = [\n'admin' => ['core:AdminPassword'],\n'example-userpass' => [\n  'exampleauth:UserPass',\n{users}],\n];\n"
    )
}

const IDP_HOSTED: &str = r#"<?php
$metadata['__DYNAMIC:1__'] = [
  'host' => '__DEFAULT__',
  'privatekey' => 'idp.key',
  'certificate' => 'idp.crt',
  'auth' => 'example-userpass',
  'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
  'saml20.sign.assertion' => true,
  'saml20.sign.response' => true,
];
"#;

fn sp_remote_php(sp: &SpEntry) -> String {
    let signing = match &sp.signing_cert_pem {
        Some(pem) => {
            let der_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            format!(
                "  'validate.authnrequest' => true,\n  'validate.logout' => true,\n  'certData' => {},\n",
                php_str(&der_b64)
            )
        }
        None => "  'validate.authnrequest' => false,\n  'validate.logout' => false,\n".to_owned(),
    };
    let pairs = |list: &[(String, String)]| -> String {
        list.iter()
            .map(|(from, to)| format!("{} => {}", php_str(from), php_str(to)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut filters = Vec::new();
    if !sp.attribute_copies.is_empty() {
        let copies = pairs(&sp.attribute_copies);
        filters.push(format!("50 => ['class' => 'core:AttributeCopy', {copies}]"));
    }
    if !sp.attribute_renames.is_empty() {
        let renames = pairs(&sp.attribute_renames);
        filters.push(format!("60 => ['class' => 'core:AttributeMap', {renames}]"));
    }
    let authproc = format!("  'authproc' => [{}],\n", filters.join(", "));
    let signing = signing + &authproc;
    format!(
        r#"<?php
$metadata[{entity}] = [
  'AssertionConsumerService' => [['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', 'Location' => {acs}]],
  'SingleLogoutService' => [['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', 'Location' => {acs}]],
  'NameIDFormat' => {nameid_format},
  'simplesaml.nameidattribute' => {nameid_attribute},
  'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
{signing}];
"#,
        entity = php_str(&sp.entity_id),
        acs = php_str(&sp.acs),
        nameid_format = php_str(if sp.nameid_email {
            "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
        } else {
            "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
        }),
        nameid_attribute = php_str(if sp.nameid_email { "email" } else { "uid" }),
    )
}

/// How a scripted SAML login ended.
pub struct SamlLogin {
    /// The ACS response (a 303 on success), or the page where the flow stopped.
    pub response: Page,
    /// The SAMLResponse the IdP posted (base64), when the flow got that far.
    pub saml_response: Option<String>,
    pub relay_state: Option<String>,
    pub trail: Vec<String>,
}

impl SamlLogin {
    pub fn succeeded(&self) -> bool {
        self.saml_response.is_some() && self.response.status.as_u16() == 303
    }

    pub fn expect_success(&self) -> Url {
        assert!(
            self.succeeded(),
            "SAML login did not succeed; trail:\n  {}\nlast body:\n{}",
            self.trail.join("\n  "),
            self.response.body
        );
        self.response.location().expect("ACS Location")
    }
}

/// Logs in through the proxy at `base` with connection `provider` as `user` (password
/// `<user>-pw`): follows redirects to the IdP, posts the login form, then posts the IdP's
/// auto-submit form (SAMLResponse, RelayState) to our ACS.
pub async fn login(
    browser: &Browser,
    base: &str,
    provider: &str,
    user: &str,
    rd: Option<&str>,
) -> SamlLogin {
    let mut start = Url::parse(&format!("{base}/_sso/login")).expect("base");
    start.query_pairs_mut().append_pair("provider", provider);
    if let Some(rd) = rd {
        start.query_pairs_mut().append_pair("rd", rd);
    }
    let mut trail = Vec::new();
    let mut page = browser.navigate(start.as_str()).await;
    let mut posted_password = false;
    for _ in 0..20 {
        trail.push(page.describe());
        if page.is_redirect() {
            let next = page.location().expect("location");
            page = browser.navigate(next.as_str()).await;
            continue;
        }
        let forms = html::forms(&page.body);
        if let Some(form) = forms.iter().find(|f| f.has_input("SAMLResponse")) {
            let action = page
                .url
                .join(form.action.as_deref().unwrap_or(""))
                .expect("action");
            let fields = form.inputs.clone();
            let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            let (saml_response, relay_state) = (get("SAMLResponse"), get("RelayState"));
            let response = browser
                .send(browser.nav(Method::POST, action.as_str()).form(&fields))
                .await;
            trail.push(response.describe());
            return SamlLogin {
                response,
                saml_response,
                relay_state,
                trail,
            };
        }
        let login_form = forms.iter().find(|f| f.has_input("password"));
        match login_form {
            Some(form) if !posted_password => {
                posted_password = true;
                let action = page
                    .url
                    .join(form.action.as_deref().unwrap_or(""))
                    .expect("action");
                let mut fields: Vec<(String, String)> = form
                    .inputs
                    .iter()
                    .filter(|(n, _)| n != "username" && n != "password")
                    .cloned()
                    .collect();
                fields.push(("username".into(), user.into()));
                fields.push(("password".into(), format!("{user}-pw")));
                page = browser
                    .send(browser.nav(Method::POST, action.as_str()).form(&fields))
                    .await;
            }
            _ => break,
        }
    }
    SamlLogin {
        response: page,
        saml_response: None,
        relay_state: None,
        trail,
    }
}

/// The temp dir's SimpleSAMLphp log, for assertions on what the IdP accepted.
pub fn idp_log(idp: &SimpleSamlIdp) -> String {
    std::fs::read_to_string(PathBuf::from(idp.dir()).join("log/simplesamlphp.log"))
        .unwrap_or_default()
}
