//! deploy/examples/nginx-auth-request against the real nginx: nginx fronts an echo app, asks
//! sso-proxy's `/_sso/auth` for every request, and passes the identity on. The example file is
//! used as is, with only its three addresses swapped for test ports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::browser::Browser;
use support::echo::EchoUpstream;
use support::front::{self, FrontServer};
use support::stack::{Stack, StackOptions, LOCAL};
use support::util::free_port;

const NGINX: &str = "/usr/sbin/nginx";

fn example_dir() -> PathBuf {
    front::example_dir("nginx-auth-request")
}

/// The example with its addresses swapped; nginx's scratch files and logs go to `dir`.
fn render(listen: u16, proxy: u16, app: u16, dir: &Path) -> String {
    let conf = front::swap(
        std::fs::read_to_string(example_dir().join("nginx.conf")).unwrap(),
        "nginx.conf",
        &[
            ("127.0.0.1:8080", format!("127.0.0.1:{listen}")),
            ("127.0.0.1:4180", format!("127.0.0.1:{proxy}")),
            ("127.0.0.1:3000", format!("127.0.0.1:{app}")),
        ],
    );
    // Keep nginx's scratch files and logs in the test's directory.
    let d = dir.display();
    let scratch = format!(
        "http {{\n    client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n    \
         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    \
         scgi_temp_path {d}/scgi;\n    access_log {d}/access.log;\n"
    );
    assert!(conf.contains("http {\n"));
    conf.replacen("http {\n", &scratch, 1)
}

async fn start_nginx(listen: u16, proxy: u16, app: u16) -> FrontServer {
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} is missing: install Debian's nginx package (scripts/test.sh does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, render(listen, proxy, app, dir.path())).unwrap();
    std::fs::copy(
        example_dir().join("identity_headers.conf"),
        dir.path().join("identity_headers.conf"),
    )
    .unwrap();
    let error_log = dir.path().join("error.log");
    let globals = format!(
        "daemon off; master_process off; pid {}/nginx.pid; error_log {} info;",
        dir.path().display(),
        error_log.display()
    );
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(&error_log)
        .arg("-g")
        .arg(&globals)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    let mut nginx = FrontServer::new("nginx", child, dir, "error.log");
    nginx
        .wait_until(
            &format!("listen on {listen}"),
            Duration::from_secs(15),
            || async {
                tokio::net::TcpStream::connect(("127.0.0.1", listen))
                    .await
                    .is_ok()
            },
        )
        .await;
    nginx
}

#[tokio::test]
async fn nginx_auth_request_example_protects_the_app() {
    let nginx_port = free_port();
    let stack = Stack::start(
        StackOptions {
            public_port: Some(nginx_port),
            ..StackOptions::real()
        },
        |_| {},
    )
    .await;
    let app = EchoUpstream::start();
    let _nginx = start_nginx(nginx_port, stack.proxy.port, app.port).await;
    let front = format!("http://127.0.0.1:{nginx_port}");

    // No session: to the login, with the way back.
    let b = Browser::new();
    let page = b.navigate(&format!("{front}/app/page")).await;
    assert_eq!(page.status, 302, "{}", page.body);
    let login = page.location().unwrap();
    assert_eq!(login.as_str(), format!("{front}/_sso/login?rd=/app/page"));
    assert_eq!(
        app.request_count(),
        0,
        "the app is not reached without a session"
    );

    // The whole login runs through nginx (login page, IdP, /callback_local).
    let r = b
        .login_from(&front, &format!("{front}/app/page"), "alice", "alice-pw")
        .await;
    let target = r.expect_success();
    assert_eq!(
        r.callback_url.unwrap().as_str().split('?').next().unwrap(),
        format!("{front}/callback_{LOCAL}")
    );
    assert_eq!(target.as_str(), format!("{front}/app/page"));

    // Logged in: the app sees the identity nginx took from /_sso/auth, not the client's.
    let page = b
        .send(
            b.nav(reqwest::Method::GET, target.as_str())
                .header("x-forwarded-user", "mallory")
                .header("x-auth-request-groups", "root")
                .header("remote-user", "mallory"),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = app.last_to("/app/page").expect("the app got the request");
    assert_eq!(seen.header_all("x-forwarded-user"), vec!["alice"]);
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-preferred-username"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-groups"), Some("admins,ml-team"));
    assert_eq!(seen.header("x-forwarded-name"), Some("Alice Liddell"));
    assert_eq!(
        seen.header_all("x-auth-request-groups"),
        vec!["admins,ml-team"]
    );
    assert!(seen.header("remote-user").is_none());
    assert_eq!(
        stack.echo.request_count(),
        0,
        "in this mode the proxy forwards nothing"
    );

    // /admin/ is for the IdP group "admins": alice is in.
    assert_eq!(b.navigate(&format!("{front}/admin/x")).await.status, 200);
    assert_eq!(
        app.last_to("/admin/x").unwrap().header("x-forwarded-user"),
        Some("alice")
    );

    // bob is not an admin: 403, and the app never sees the request.
    let bob = Browser::new();
    bob.login_from(&front, &format!("{front}/app/bob"), "bob", "bob-pw")
        .await
        .expect_success();
    assert_eq!(bob.navigate(&format!("{front}/app/bob")).await.status, 200);
    assert_eq!(bob.navigate(&format!("{front}/admin/x")).await.status, 403);
    assert!(app
        .requests()
        .iter()
        .all(|r| !(r.path == "/admin/x" && r.header("x-forwarded-user") == Some("bob"))));

    // Logout through nginx ends the session there too.
    let out = b
        .send(
            b.client
                .post(format!("{front}/_sso/logout"))
                .header("origin", &front),
        )
        .await;
    assert!(
        out.status.as_u16() < 400,
        "logout: {} {}",
        out.status,
        out.body
    );
    assert_eq!(b.navigate(&format!("{front}/app/page")).await.status, 302);
}
