//! The proxy under test: the real `sso-proxy` binary with a YAML config in a temp directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Proxy {
    /// `http://<listen>`: where the proxy itself answers.
    pub base_url: String,
    pub port: u16,
    /// `public_url` from the config (differs from `base_url` behind nginx).
    pub public_url: String,
    pub config_path: PathBuf,
    child: Child,
    logs: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Everything the proxy wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("lock").clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send a signal (`HUP`, `TERM`, ...) to the proxy process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Wait until `needle` occurs `count` times in the proxy's output; panics after 15 s.
    pub async fn wait_for_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.logs().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not appear {count} time(s) in the proxy's output"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn print_logs(&self) {
        let logs = self.logs();
        let lines: Vec<&str> = logs.lines().collect();
        let tail = &lines[lines.len().saturating_sub(300)..];
        eprintln!("---- sso-proxy output (last {} lines) ----", tail.len());
        for line in tail {
            eprintln!("{line}");
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

fn pump(mut pipe: impl std::io::Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
}

/// Start the proxy with `yaml` and wait until `/_sso/healthz` and `/_sso/readyz` answer 200.
pub async fn spawn_proxy(yaml: &str) -> Proxy {
    spawn_proxy_with(yaml, true).await
}

/// Start the proxy with `yaml`; wait for `/_sso/healthz` (and `/_sso/readyz` when `wait_ready`).
/// Panics with the proxy's output when it does not come up within 20 s.
pub async fn spawn_proxy_with(yaml: &str, wait_ready: bool) -> Proxy {
    spawn_proxy_env(yaml, wait_ready, &[]).await
}

/// Like [`spawn_proxy_with`], with these variables in the proxy's otherwise clean environment
/// (e.g. ClearML's `CLEARML__services__login__sso__oauth_client__…`).
pub async fn spawn_proxy_env(yaml: &str, wait_ready: bool, env: &[(String, String)]) -> Proxy {
    let parsed: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test config is YAML");
    let listen = parsed["listen"]
        .as_str()
        .expect("test config sets `listen`")
        .to_owned();
    let port: u16 = listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("listen has a port");
    let public_url = parsed["public_url"].as_str().unwrap_or_default().to_owned();
    // With `tls:` the listener speaks HTTPS (readiness is then checked without verifying the
    // certificate).
    let scheme = if parsed["tls"].is_mapping() {
        "https"
    } else {
        "http"
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("sso-proxy.yaml");
    std::fs::write(&config_path, yaml).expect("write config");

    let mut child = Command::new(env!("CARGO_BIN_EXE_sso-proxy"))
        .arg("--config")
        .arg(&config_path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sso-proxy");
    let logs = Arc::new(Mutex::new(String::new()));
    pump(child.stdout.take().expect("stdout"), logs.clone());
    pump(child.stderr.take().expect("stderr"), logs.clone());

    let mut proxy = Proxy {
        base_url: format!("{scheme}://{listen}"),
        port,
        public_url,
        config_path,
        child,
        logs,
        _dir: dir,
    };
    proxy.wait_for("/_sso/healthz").await;
    if wait_ready {
        proxy.wait_for("/_sso/readyz").await;
    }
    proxy
}

impl Proxy {
    async fn wait_for(&mut self, path: &str) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let url = self.url(path);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!("sso-proxy exited with {status} before {path} answered 200 (output below)");
            }
            let last = match client.get(&url).send().await {
                Ok(r) if r.status().as_u16() == 200 => return,
                Ok(r) => format!("status {}", r.status()),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                panic!(
                    "sso-proxy: {path} did not answer 200 within 20 s (last: {last}; output below)"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
