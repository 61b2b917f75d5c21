//! `GET /_sso/login[?provider=<id>][&rd=<target>]`: the chooser page, or the start of a login
//! at one connection (straight away when exactly one connection is active).

use http::Method;

use super::pages;
use super::redirect::safe_target;
use super::{Request, Response};
use crate::app::App;
use crate::config::PkceMethod;
use crate::error::Error;
use crate::providers::oidc::OidcProvider;
use crate::providers::Connection;
use crate::session::{PendingLogin, PendingStore};

pub async fn handle(app: &App, req: &Request<'_>) -> Result<Response, Error> {
    if req.method != Method::GET && req.method != Method::HEAD {
        return Err(Error::MethodNotAllowed);
    }
    if let Some(bridge) = app.bridge.as_ref().filter(|b| !b.is_ready()) {
        // A login now would leave the user half signed in: say which server is missing.
        bridge.check().await?;
    }
    let config = &app.config;
    let rd = safe_target(
        req.query_param("rd").as_deref(),
        &config.public_url,
        &config.allowed_redirect_hosts,
    );
    let registry = app.registry.load();
    let active = registry.active();
    let chosen = match req.query_param("provider") {
        Some(id) => Some(
            active
                .iter()
                .find(|p| p.id() == id)
                .ok_or(Error::UnknownConnection(id))?,
        ),
        None if active.len() == 1 => active.first(),
        None => None,
    };
    if let Some(connection) = chosen {
        app.metrics.login_started(connection.id());
    }
    match chosen {
        Some(Connection::Oidc(provider)) => return start(app, provider, rd, req).await,
        Some(Connection::Saml(provider)) => {
            return super::saml_login::start(app, provider, rd, req)
        }
        None => {}
    }
    if active.is_empty() {
        return Err(Error::NoConnections);
    }
    let entries: Vec<(String, String)> = active
        .iter()
        .map(|p| {
            let href = format!("/_sso/login?provider={}&rd={}", enc(p.id()), enc(&rd));
            (p.display_name().to_owned(), href)
        })
        .collect();
    Ok(Response::html(200, pages::chooser(&entries)))
}

/// Begin the authorization code flow: seal the pending state into its cookie and redirect.
pub async fn start(
    app: &App,
    provider: &OidcProvider,
    return_to: String,
    req: &Request<'_>,
) -> Result<Response, Error> {
    let pending = PendingLogin {
        state: PendingStore::random_token(),
        nonce: PendingStore::random_token(),
        pkce_verifier: (provider.config.code_challenge_method != PkceMethod::None)
            .then(PendingStore::random_token),
        provider: provider.id().to_owned(),
        return_to,
        created_at: app.now(),
        test: false,
        generation: provider.generation,
    };
    let url = provider.authorization_url(&pending).await?;
    if provider.config.debug {
        tracing::info!(provider = %provider.id(), request_id = %req.request_id, "redirecting to the authorization endpoint");
    }
    let cookies = app.pending.issue(&pending, req.cookies);
    Ok(Response::redirect(302, url.as_str()).with_cookies(cookies))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
