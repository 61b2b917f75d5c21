//! A whole test set-up in one call: echo upstream + real OP and/or BadOp + the proxy, with the
//! proxy config as a JSON value that a test can tweak before the proxy starts.
//!
//! Provider ids: `local` (the real OP, display name "Local OP") and `bad` (the BadOp,
//! display name "Bad OP").

use serde_json::{json, Value};

use super::bad_op::BadOp;
use super::browser::{Browser, LoginResult, Page};
use super::echo::EchoUpstream;
use super::op::{spawn_op, Op, OpClient};
use super::proxy::{spawn_proxy_with, Proxy};
use super::util::{free_port, random_string};

pub const LOCAL: &str = "local";
pub const BAD: &str = "bad";
pub const LOCAL_CLIENT_ID: &str = "proxy-client";
pub const BAD_CLIENT_ID: &str = "bad-client";

#[derive(Clone, Debug)]
pub struct StackOptions {
    pub real_op: bool,
    pub bad_op: bool,
    /// `memory` or `cookie`.
    pub store: &'static str,
    /// Port of a front server (nginx) that is the public URL; default: the proxy itself.
    pub public_port: Option<u16>,
    /// Wait for `/_sso/readyz` (not only `/_sso/healthz`) before returning.
    pub wait_ready: bool,
    /// Serve HTTPS (`tls:` with a test-time certificate for 127.0.0.1) with an https
    /// `public_url`; browsers from [`Stack::browser`] trust the certificate.
    pub tls: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            real_op: true,
            bad_op: false,
            store: "memory",
            public_port: None,
            wait_ready: true,
            tls: false,
        }
    }
}

impl StackOptions {
    pub fn real() -> Self {
        Self::default()
    }

    pub fn bad() -> Self {
        Self {
            real_op: false,
            bad_op: true,
            ..Self::default()
        }
    }

    pub fn both() -> Self {
        Self {
            real_op: true,
            bad_op: true,
            ..Self::default()
        }
    }

    pub fn store(mut self, store: &'static str) -> Self {
        self.store = store;
        self
    }
}

pub struct Stack {
    pub proxy: Proxy,
    pub op: Option<Op>,
    pub bad: Option<BadOp>,
    pub echo: EchoUpstream,
    /// The config the proxy was started with.
    pub config: Value,
    pub session_secret: String,
    pub local_client_secret: String,
    /// With [`StackOptions::tls`]: the certificate's PEM, and the directory holding its files.
    pub tls: Option<(String, tempfile::TempDir)>,
}

/// A self-signed certificate for 127.0.0.1 and localhost in a new temp dir: the proxy's `tls`
/// block for it, its PEM, and the directory.
pub fn test_certificate() -> (Value, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("test certificate");
    let pem = cert.cert.pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &pem).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let block = json!({
        "cert_file": cert_path.to_str().expect("utf-8 path"),
        "key_file": key_path.to_str().expect("utf-8 path"),
    });
    (block, pem, dir)
}

/// The provider block for an OIDC connection (`protocol: oidc`, `provider: custom`).
pub fn oidc_provider(display_name: &str, issuer: &str, client_id: &str, secret: &str) -> Value {
    json!({
        "protocol": "oidc",
        "provider": "custom",
        "display_name": display_name,
        "issuer": issuer,
        "client_id": client_id,
        "client_secret": secret,
        "groups": { "enabled": true, "admins": ["admins"] },
    })
}

impl Stack {
    /// Echo upstream + real OP (`local`) + proxy with the default config.
    pub async fn with_real_op() -> Self {
        Self::start(StackOptions::real(), |_| {}).await
    }

    /// Echo upstream + BadOp (`bad`) + proxy with the default config.
    pub async fn with_bad_op() -> Self {
        Self::start(StackOptions::bad(), |_| {}).await
    }

    /// Start everything; `tweak` edits the proxy config (a JSON value written out as YAML).
    pub async fn start(opts: StackOptions, tweak: impl FnOnce(&mut Value)) -> Self {
        let echo = EchoUpstream::start();
        let port = free_port();
        let scheme = if opts.tls { "https" } else { "http" };
        let public_url = format!("{scheme}://127.0.0.1:{}", opts.public_port.unwrap_or(port));
        let session_secret = random_string(48);
        let local_client_secret = random_string(32);

        let mut config = json!({
            "listen": format!("127.0.0.1:{port}"),
            "upstream": echo.url,
            "public_url": public_url,
            "session": { "secret": session_secret, "store": opts.store },
            "state": { "path": ":memory:" },
            "log": { "level": "debug" },
            "allowed_redirect_hosts": [],
            "providers": {},
        });

        let op = if opts.real_op {
            let mut client = OpClient::new(
                LOCAL_CLIENT_ID,
                &local_client_secret,
                &format!("{public_url}/callback_{LOCAL}"),
            );
            client.post_logout_redirect_uris = vec![format!("{public_url}/")];
            let op = spawn_op(&[client]).await;
            config["providers"][LOCAL] = oidc_provider(
                "Local OP",
                &op.issuer,
                LOCAL_CLIENT_ID,
                &local_client_secret,
            );
            Some(op)
        } else {
            None
        };
        let bad = if opts.bad_op {
            let bad = BadOp::start(BAD_CLIENT_ID, &random_string(32));
            config["providers"][BAD] =
                oidc_provider("Bad OP", &bad.issuer, BAD_CLIENT_ID, &bad.client_secret);
            Some(bad)
        } else {
            None
        };

        let tls = opts.tls.then(|| {
            let (block, pem, dir) = test_certificate();
            config["tls"] = block;
            (pem, dir)
        });
        tweak(&mut config);
        let yaml = serde_yaml::to_string(&config).expect("config to YAML");
        let proxy = spawn_proxy_with(&yaml, opts.wait_ready).await;
        Self {
            proxy,
            op,
            bad,
            echo,
            config,
            session_secret,
            local_client_secret,
            tls,
        }
    }

    /// A new browser; with [`StackOptions::tls`] it trusts the proxy's certificate.
    pub fn browser(&self) -> Browser {
        match &self.tls {
            Some((pem, _)) => Browser::trusting(pem),
            None => Browser::new(),
        }
    }

    /// The proxy URL for `path` (`http://127.0.0.1:<port><path>`).
    pub fn url(&self, path: &str) -> String {
        self.proxy.url(path)
    }

    pub fn base(&self) -> &str {
        &self.proxy.base_url
    }

    pub fn op(&self) -> &Op {
        self.op.as_ref().expect("stack has the real OP")
    }

    pub fn bad(&self) -> &BadOp {
        self.bad.as_ref().expect("stack has the BadOp")
    }

    /// Log in at the real OP (`local`) as `user` (password `<user>-pw`).
    pub async fn login_local(
        &self,
        browser: &Browser,
        user: &str,
        rd: Option<&str>,
    ) -> LoginResult {
        browser
            .login(self.base(), Some(LOCAL), user, &format!("{user}-pw"), rd)
            .await
    }

    /// Log in at the BadOp (`bad`) in its current mode.
    pub async fn login_bad(&self, browser: &Browser, rd: Option<&str>) -> LoginResult {
        browser
            .login(self.base(), Some(BAD), "unused", "unused", rd)
            .await
    }

    /// A new browser, logged in as `user` at the real OP; panics unless it worked.
    pub async fn browser_as(&self, user: &str) -> Browser {
        let browser = Browser::new();
        self.login_local(&browser, user, None)
            .await
            .expect_success();
        browser
    }

    /// A new browser, logged in at the BadOp (mode Good); panics unless it worked.
    pub async fn browser_bad(&self) -> Browser {
        let browser = Browser::new();
        self.login_bad(&browser, None).await.expect_success();
        browser
    }

    /// The current session cookie (`sso_session`) in `browser`, if any.
    pub fn session_cookie(&self, browser: &Browser) -> Option<String> {
        browser.cookie(&self.url("/"), "sso_session")
    }

    /// `GET /_sso/userinfo` as an API call.
    pub async fn userinfo(&self, browser: &Browser) -> Page {
        browser
            .send(
                browser
                    .client
                    .get(self.url("/_sso/userinfo"))
                    .header("accept", "application/json"),
            )
            .await
    }

    /// The session in `browser` is valid: `/_sso/userinfo` answers 200; returns its JSON.
    pub async fn assert_logged_in(&self, browser: &Browser) -> Value {
        let page = self.userinfo(browser).await;
        assert_eq!(
            page.status, 200,
            "expected a session; /_sso/userinfo: {}",
            page.body
        );
        page.json()
    }

    /// `browser` has no session: `/_sso/userinfo` and a protected API request answer 401 and
    /// the upstream sees nothing.
    pub async fn assert_no_session(&self, browser: &Browser) {
        let page = self.userinfo(browser).await;
        assert_eq!(
            page.status, 401,
            "expected no session; /_sso/userinfo: {}",
            page.body
        );
        let before = self.echo.request_count();
        let page = browser.api_get(&self.url("/protected/after-check")).await;
        assert_eq!(
            page.status, 401,
            "expected no session; protected page: {}",
            page.body
        );
        assert_eq!(
            self.echo.request_count(),
            before,
            "upstream reached without a session"
        );
    }

    /// Panic if `body` contains any token the BadOp issued or any secret of this set-up.
    pub fn assert_no_secrets_in(&self, what: &str, body: &str) {
        let mut secrets = vec![
            self.session_secret.clone(),
            self.local_client_secret.clone(),
        ];
        if let Some(bad) = &self.bad {
            secrets.push(bad.client_secret.clone());
            for token in bad.issued_tokens() {
                // The whole token, and its signature on its own (when it has one).
                if let Some(sig) = token.rsplit('.').next().filter(|s| s.len() > 16) {
                    secrets.push(sig.to_owned());
                }
                secrets.push(token);
            }
        }
        for secret in secrets {
            assert!(
                !body.contains(&secret),
                "{what} contains a token or secret ({}...)",
                &secret[..secret.len().min(8)]
            );
        }
    }
}
