//! The data path itself: HTTPS listener, HTTPS upstream verified with a CA file, and graceful
//! shutdown on SIGTERM. (WebSocket upgrades are covered in login_flow.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::echo::EchoUpstream;
use support::proxy::spawn_proxy;
use support::util::{free_port, random_string};

/// A self-signed certificate for 127.0.0.1/localhost, written to `dir`.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (cert_path, key_path, cert_pem)
}

fn pass_through_config(port: u16, upstream: &str, extra: &str) -> String {
    let scheme = if extra.contains("tls:") {
        "https"
    } else {
        "http"
    };
    format!(
        "listen: 127.0.0.1:{port}\nupstream: {upstream}\npublic_url: {scheme}://localhost:{port}\n\
         session: {{ secret: \"{}\" }}\nskip_auth: [\"^/\"]\n{extra}",
        random_string(40)
    )
}

/// The proxy binary with `yaml`, killed on drop; ready once its port accepts connections.
struct RawProxy {
    child: std::process::Child,
    /// Holds the config directory for as long as the proxy runs.
    _dir: tempfile::TempDir,
}

impl Drop for RawProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_raw(yaml: &str) -> RawProxy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, yaml).unwrap();
    let port: u16 = yaml
        .lines()
        .find_map(|l| l.strip_prefix("listen: 127.0.0.1:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sso-proxy"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proxy = RawProxy { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "proxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy
}

#[tokio::test]
async fn https_listener_serves_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = certificate(dir.path());
    let echo = EchoUpstream::start();
    let port = free_port();
    let extra = format!(
        "tls: {{ cert_file: {}, key_file: {} }}\n",
        cert.display(),
        key.display()
    );
    let yaml = pass_through_config(port, &echo.url, &extra);
    let _proxy = spawn_raw(&yaml);
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://localhost:{port}/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = echo
        .last_to("/hello")
        .expect("request reached the upstream");
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    // Plain HTTP to the TLS port is not served.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/hello")).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[tokio::test]
async fn https_upstream_is_verified_against_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _pem) = certificate(dir.path());
    let echo = EchoUpstream::start();
    // A TLS front (another sso-proxy) stands in for an HTTPS app.
    let tls_port = free_port();
    let extra = format!(
        "tls: {{ cert_file: {}, key_file: {} }}\n",
        cert.display(),
        key.display()
    );
    let _front = spawn_raw(&pass_through_config(tls_port, &echo.url, &extra));
    let upstream = format!("https://localhost:{tls_port}");

    let trusting_port = free_port();
    let with_ca = format!("upstream_ca_file: {}\n", cert.display());
    let trusting = spawn_proxy(&pass_through_config(trusting_port, &upstream, &with_ca)).await;
    let resp = reqwest::get(trusting.url("/via-tls")).await.unwrap();
    assert_eq!(resp.status(), 200, "trusted CA: upstream reached over TLS");
    assert!(echo.last_to("/via-tls").is_some());

    let untrusting_port = free_port();
    let untrusting = spawn_proxy(&pass_through_config(untrusting_port, &upstream, "")).await;
    let resp = reqwest::get(untrusting.url("/untrusted")).await.unwrap();
    assert_eq!(resp.status(), 502, "unknown CA must not be trusted");
    assert!(echo.last_to("/untrusted").is_none());
}

/// The real binary passing everything to `echo`, started on `port` and accepting connections.
/// The temp dir holds its config and must outlive it.
fn spawn_binary(port: u16, echo: &EchoUpstream) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, pass_through_config(port, &echo.url, "")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sso-proxy"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "proxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, dir)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits up to 15 s for the process to end and checks it exited 0.
fn assert_exits_cleanly(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "proxy did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

#[test]
fn sigterm_stops_the_proxy_gracefully() {
    let echo = EchoUpstream::start();
    let port = free_port();
    let (mut child, _dir) = spawn_binary(port, &echo);
    sigterm(&child);
    assert_exits_cleanly(&mut child);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "listener closed"
    );
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    use std::io::{Read as _, Write as _};
    let echo = EchoUpstream::start();
    let port = free_port();
    let (mut child, _dir) = spawn_binary(port, &echo);
    // A request the upstream answers only after 2 s, started before the SIGTERM.
    let request = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        write!(
            stream,
            "GET /slow?ms=2000 HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    });
    let started = Instant::now();
    while echo.last_to("/slow").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "request never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    sigterm(&child);
    let answer = request.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight request completed: {answer:?}"
    );
    assert!(
        answer.contains("/slow"),
        "with the upstream's answer: {answer}"
    );
    assert_exits_cleanly(&mut child);
}
