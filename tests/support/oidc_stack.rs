//! Set-ups for the OIDC option, preset and session-lifetime tests (`tests/oidc_*.rs`): a
//! [`Stack`] whose BadOp is laid out like a given IdP and whose connection has any id and any
//! provider block (or none, when ClearML variables define it), and a [`Stack`] whose real OP
//! issues refresh tokens, has short access tokens or does back-channel logout.

use serde_json::{json, Value};

use super::bad_op::{BadOp, Layout};
use super::browser::{Browser, LoginResult};
use super::echo::EchoUpstream;
use super::op::{spawn_op_env, OpClient};
use super::proxy::spawn_proxy_env;
use super::stack::{oidc_provider, Stack, LOCAL, LOCAL_CLIENT_ID};
use super::util::{free_port, random_string};

pub const BAD_CLIENT: &str = "bad-client";

/// A BadOp-backed stack: connection `id`, BadOp laid out as `layout`.
pub struct BadStack {
    pub id: String,
    pub layout: Layout,
    pub store: &'static str,
    pub wait_ready: bool,
}

impl BadStack {
    pub fn new(id: &str, layout: Layout) -> Self {
        Self {
            id: id.to_owned(),
            layout,
            store: "memory",
            wait_ready: true,
        }
    }

    pub fn store(mut self, store: &'static str) -> Self {
        self.store = store;
        self
    }

    /// Start with `block(&bad)` as `providers.<id>` (`Value::Null`: no block in the file),
    /// `env(&bad)` as extra proxy environment, then `tweak` on the whole config.
    pub async fn start_env(
        self,
        block: impl FnOnce(&BadOp) -> Value,
        env: impl FnOnce(&BadOp) -> Vec<(String, String)>,
        tweak: impl FnOnce(&mut Value),
    ) -> Stack {
        let bad = BadOp::start_with(BAD_CLIENT, &random_string(32), self.layout);
        let echo = EchoUpstream::start();
        let port = free_port();
        let public_url = format!("http://127.0.0.1:{port}");
        let session_secret = random_string(48);
        let mut config = json!({
            "listen": format!("127.0.0.1:{port}"),
            "upstream": echo.url,
            "public_url": public_url,
            "session": { "secret": session_secret, "store": self.store },
            "log": { "level": "debug" },
            "providers": {},
        });
        let provider = block(&bad);
        if !provider.is_null() {
            config["providers"][&self.id] = provider;
        }
        tweak(&mut config);
        let env = env(&bad);
        let yaml = serde_yaml::to_string(&config).expect("config to YAML");
        let proxy = spawn_proxy_env(&yaml, self.wait_ready, &env).await;
        Stack {
            proxy,
            op: None,
            bad: Some(bad),
            echo,
            config,
            session_secret,
            // No real OP here; a random value keeps `assert_no_secrets_in` meaningful.
            local_client_secret: random_string(32),
            tls: None,
        }
    }

    /// Start with `block(&bad)` as `providers.<id>`, then `tweak` on the whole config.
    pub async fn start(
        self,
        block: impl FnOnce(&BadOp) -> Value,
        tweak: impl FnOnce(&mut Value),
    ) -> Stack {
        self.start_env(block, |_| Vec::new(), tweak).await
    }
}

/// The usual provider block for a BadOp: `provider`, `issuer`, client id and secret.
pub fn bad_block(bad: &BadOp, preset: &str) -> Value {
    json!({
        "provider": preset,
        "display_name": format!("{preset} (BadOp)"),
        "issuer": bad.issuer,
        "client_id": bad.client_id,
        "client_secret": bad.client_secret,
    })
}

/// The default BadOp stack (`bad` connection, custom preset, no groups settings) with `extra`
/// merged into the provider block and `tweak` applied to the whole config.
pub async fn bad_stack(extra: Value, tweak: impl FnOnce(&mut Value)) -> Stack {
    BadStack::new("bad", Layout::default())
        .start(
            |bad| {
                let mut block = bad_block(bad, "custom");
                merge(&mut block, extra);
                block
            },
            tweak,
        )
        .await
}

/// Shallow-merge the object `extra` into `into`.
pub fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        for (k, v) in extra {
            into.insert(k, v);
        }
    }
}

/// Log in through connection `id` (the BadOp has no login page, so no credentials).
pub async fn login(stack: &Stack, id: &str, browser: &Browser) -> LoginResult {
    browser
        .login(stack.base(), Some(id), "unused", "unused", None)
        .await
}

/// A new browser logged in through `id`; panics unless it worked.
pub async fn logged_in(stack: &Stack, id: &str) -> Browser {
    let browser = Browser::new();
    login(stack, id, &browser).await.expect_success();
    browser
}

/// The real-OP stack (`local`) with op.mjs settings in `op_env` (see
/// [`spawn_op_env`](super::op::spawn_op_env)); `backchannel` registers
/// `<public_url>/_sso/backchannel_logout/local` as the client's back-channel logout URI.
pub async fn real_stack(
    op_env: &[(&str, &str)],
    backchannel: bool,
    tweak: impl FnOnce(&mut Value),
) -> Stack {
    let echo = EchoUpstream::start();
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let session_secret = random_string(48);
    let local_client_secret = random_string(32);
    let mut client = OpClient::new(
        LOCAL_CLIENT_ID,
        &local_client_secret,
        &format!("{public_url}/callback_{LOCAL}"),
    );
    client.post_logout_redirect_uris = vec![format!("{public_url}/")];
    if backchannel {
        client.backchannel_logout_uri =
            Some(format!("{public_url}/_sso/backchannel_logout/{LOCAL}"));
    }
    let op = spawn_op_env(&[client], op_env).await;
    let mut config = json!({
        "listen": format!("127.0.0.1:{port}"),
        "upstream": echo.url,
        "public_url": public_url,
        "session": { "secret": session_secret, "store": "memory" },
        "log": { "level": "debug" },
        "providers": {},
    });
    config["providers"][LOCAL] = oidc_provider(
        "Local OP",
        &op.issuer,
        LOCAL_CLIENT_ID,
        &local_client_secret,
    );
    tweak(&mut config);
    let yaml = serde_yaml::to_string(&config).expect("config to YAML");
    let proxy = spawn_proxy_env(&yaml, true, &[]).await;
    Stack {
        proxy,
        op: Some(op),
        bad: None,
        echo,
        config,
        session_secret,
        local_client_secret,
        tls: None,
    }
}

/// The value of `name` in a query string list.
pub fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}
