//! The admin-plane set-up: echo upstream + the real OP with two clients (`proxy-client` for the
//! configured connection `local`, `second-client` for a connection made through the admin API
//! as `second`) + the proxy with `admin.token` and a state database in a temp directory, plus
//! API helpers for the token and for a browser session.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};

use super::browser::{Browser, Page};
use super::echo::EchoUpstream;
use super::op::{spawn_op, Op, OpClient};
use super::proxy::{spawn_proxy, Proxy};
use super::stack::oidc_provider;
use super::util::{free_port, random_string};

pub const LOCAL: &str = "local";
pub const SECOND: &str = "second";
pub const SECOND_CLIENT_ID: &str = "second-client";

pub struct AdminStack {
    /// `None` only while restarting.
    proxy: Option<Proxy>,
    /// `http://127.0.0.1:<port>`: where the proxy answers.
    pub base_url: String,
    pub op: Op,
    pub echo: EchoUpstream,
    pub token: String,
    pub public_url: String,
    pub local_secret: String,
    pub second_secret: String,
    pub yaml: String,
    /// Holds `state.db`; kept across [`AdminStack::restart`].
    pub state_dir: tempfile::TempDir,
    pub api: reqwest::Client,
}

impl AdminStack {
    /// Start everything; `tweak` edits the proxy config (JSON written out as YAML).
    pub async fn start(tweak: impl FnOnce(&mut Value)) -> Self {
        let echo = EchoUpstream::start();
        let port = free_port();
        let public_url = format!("http://127.0.0.1:{port}");
        let local_secret = random_string(32);
        let second_secret = random_string(32);
        let token = random_string(40);
        let mut local = OpClient::new(
            "proxy-client",
            &local_secret,
            &format!("{public_url}/callback_{LOCAL}"),
        );
        local.post_logout_redirect_uris = vec![format!("{public_url}/")];
        let second = OpClient::new(
            SECOND_CLIENT_ID,
            &second_secret,
            &format!("{public_url}/callback_{SECOND}"),
        );
        let op = spawn_op(&[local, second]).await;
        let state_dir = tempfile::tempdir().expect("temp dir");
        let state_path: PathBuf = state_dir.path().join("state.db");
        let mut config = json!({
            "listen": format!("127.0.0.1:{port}"),
            "upstream": echo.url,
            "public_url": public_url,
            "session": { "secret": random_string(48) },
            "state": { "path": state_path.to_str().expect("utf-8 path") },
            "log": { "level": "debug" },
            "admin": { "token": token },
            "providers": {
                LOCAL: oidc_provider("Local OP", &op.issuer, "proxy-client", &local_secret),
            },
        });
        tweak(&mut config);
        let yaml = serde_yaml::to_string(&config).expect("config to YAML");
        let proxy = spawn_proxy(&yaml).await;
        let api = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        AdminStack {
            base_url: proxy.base_url.clone(),
            proxy: Some(proxy),
            op,
            echo,
            token,
            public_url,
            local_secret,
            second_secret,
            yaml,
            state_dir,
            api,
        }
    }

    /// Stop the proxy and start it again with the same config and state database.
    pub async fn restart(&mut self) {
        drop(self.proxy.take());
        self.proxy = Some(spawn_proxy(&self.yaml).await);
    }

    pub fn proxy(&self) -> &Proxy {
        self.proxy.as_ref().expect("the proxy is running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The settings of the `second` connection on the real OP (custom preset).
    pub fn second_settings(&self, display_name: &str) -> Value {
        json!({
            "id": SECOND,
            "protocol": "oidc",
            "provider": "custom",
            "display_name": display_name,
            "issuer": self.op.issuer,
            "client_id": SECOND_CLIENT_ID,
            "client_secret": self.second_secret,
            "groups": {"enabled": true, "admins": ["admins"]},
        })
    }

    /// An API call with the admin token: `(status, JSON body or Null, raw body)`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, String) {
        let mut req = self
            .api
            .request(method, self.url(&format!("/_sso/api/{path}")))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.expect("API request")).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value, String) {
        self.call(Method::GET, path, None).await
    }

    /// Create `second` through the API and wait until `/_sso/readyz` says it is usable.
    pub async fn create_second(&self, display_name: &str) -> Value {
        let (status, body, raw) = self
            .call(
                Method::POST,
                "connections",
                Some(self.second_settings(display_name)),
            )
            .await;
        assert_eq!(status, 201, "create second: {raw}");
        self.wait_ready().await;
        body
    }

    pub async fn wait_ready(&self) {
        let url = self.url("/_sso/readyz");
        let api = self.api.clone();
        super::util::wait_for("readyz", std::time::Duration::from_secs(15), || {
            let (api, url) = (api.clone(), url.clone());
            async move {
                let r = api.get(&url).send().await.ok()?;
                (r.status().as_u16() == 200).then_some(())
            }
        })
        .await;
    }

    /// A browser logged in at `local` as `user`.
    pub async fn browser_as(&self, user: &str) -> Browser {
        let browser = Browser::new();
        browser
            .login(
                &self.base_url,
                Some(LOCAL),
                user,
                &format!("{user}-pw"),
                None,
            )
            .await
            .expect_success();
        browser
    }

    /// An API call from a browser session, with `Origin: <origin>` when given.
    pub async fn session_call(
        &self,
        browser: &Browser,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = browser
            .client
            .request(method, self.url(&format!("/_sso/api/{path}")))
            .header("accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        browser.send(req).await
    }

    /// The login chooser's HTML (`/_sso/login` as a fresh browser sees it).
    pub async fn login_page(&self) -> Page {
        Browser::new().navigate(&self.url("/_sso/login")).await
    }

    /// Panic if `text` contains any secret of this set-up.
    pub fn assert_no_secrets(&self, what: &str, text: &str) {
        for secret in [&self.local_secret, &self.second_secret, &self.token] {
            assert!(!text.contains(secret.as_str()), "{what} contains a secret");
        }
    }
}

async fn read(resp: reqwest::Response) -> (u16, Value, String) {
    let status = resp.status().as_u16();
    let raw = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&raw).unwrap_or(Value::Null);
    (status, json, raw)
}

/// The `field`s named in a 400 `invalid` answer.
pub fn problem_fields(body: &Value) -> Vec<String> {
    assert_eq!(
        body["error"], "invalid",
        "expected a validation error: {body}"
    );
    body["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The `csrf-token` meta tag of an admin page.
pub fn csrf_from(html: &str) -> String {
    let start = html
        .find("name=\"csrf-token\" content=\"")
        .expect("csrf meta")
        + 27;
    let end = html[start..].find('"').expect("end of csrf") + start;
    html[start..end].to_owned()
}
