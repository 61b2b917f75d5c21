//! The real OpenID Provider: `node tests/idp/op.mjs` (panva/oidc-provider, pinned in
//! tests/idp/package-lock.json). Users alice, bob and carol; password `<user>-pw`.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, serde::Serialize)]
pub struct OpClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// OIDC Back-Channel Logout: where the OP posts logout tokens (with `sid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
}

impl OpClient {
    /// A confidential client (client_secret_basic) with one redirect URI.
    pub fn new(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: vec![redirect_uri.to_owned()],
            token_endpoint_auth_method: None,
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
        }
    }
}

pub struct Op {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub issuer: String,
    pub port: u16,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Op {
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// The `EVENT ...` lines op.mjs printed so far, without the prefix (e.g.
    /// `grant.success refresh_token`, `grant.revoked`, `backchannel.success proxy-client`).
    pub fn events(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .filter_map(|l| l.strip_prefix("EVENT "))
            .map(str::to_owned)
            .collect()
    }

    /// The OP's discovery document.
    pub async fn discovery(&self) -> serde_json::Value {
        reqwest::get(format!("{}/.well-known/openid-configuration", self.issuer))
            .await
            .expect("discovery request")
            .json()
            .await
            .expect("discovery JSON")
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- test OP stderr ----\n{}", self.stderr());
        }
    }
}

fn idp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/idp")
}

/// Start the real OP on a free port with `clients`; returns once it printed `READY <issuer>`.
pub async fn spawn_op(clients: &[OpClient]) -> Op {
    spawn_op_env(clients, &[]).await
}

/// Like [`spawn_op`], with settings for op.mjs in its environment: `OP_ACCESS_TOKEN_TTL`
/// (seconds), `OP_REFRESH_TOKENS=1` (issue refresh tokens without `offline_access`),
/// `OP_ROTATE_REFRESH_TOKENS=1`. The OP prints `EVENT <name> ...` lines on stderr for grants,
/// revocations and back-channel logouts (see [`Op::events`]).
pub async fn spawn_op_env(clients: &[OpClient], env: &[(&str, &str)]) -> Op {
    let dir = idp_dir();
    assert!(
        dir.join("node_modules/oidc-provider/package.json").exists(),
        "tests/idp/node_modules is missing: run `npm ci --prefix tests/idp` first \
         (scripts/test.sh does it)"
    );
    let clients_json = serde_json::to_string(clients).expect("clients JSON");
    let mut child = Command::new("node")
        .arg(dir.join("op.mjs"))
        .arg("0")
        .arg(&clients_json)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` (install Node.js 20+): {e}"));

    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let err_buf = stderr.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            err_buf
                .lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });

    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let out_pipe = child.stdout.take().expect("stdout pipe");
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(out_pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(issuer) = line.strip_prefix("READY ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(issuer.trim().to_owned());
                }
            }
        }
    });

    let mut op = Op {
        issuer: String::new(),
        port: 0,
        child,
        stderr,
    };
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(issuer)) => {
            op.port = issuer
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("issuer has a port");
            op.issuer = issuer;
            op
        }
        _ => {
            let _ = op.child.kill();
            let status = op.child.wait().ok();
            // Let the stderr reader drain the pipe.
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "test OP did not become ready (exit status {status:?}); stderr:\n{}",
                op.stderr()
            );
        }
    }
}
