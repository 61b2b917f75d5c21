//! `GET /_sso/logout` shows a sign-out button; `POST /_sso/logout` ends the session (server
//! side too) when it carries the form's CSRF token or comes from our own origin, then goes to
//! `rd` or, with `idp_logout`, to the IdP's end-session endpoint.

use base64::Engine as _;
use http::Method;
use sha2::{Digest, Sha256};

use super::pages;
use super::redirect::safe_target;
use super::{Request, Response};
use crate::app::App;
use crate::config::Preset;
use crate::error::Error;
use crate::providers::id_token::constant_time_eq;
use crate::session::Session;

pub async fn handle(app: &App, req: &Request<'_>) -> Result<Response, Error> {
    let config = &app.config;
    match *req.method {
        Method::GET | Method::HEAD => {
            let rd = req.query_param("rd");
            let token = req
                .session
                .map(|_| csrf_token(app, req))
                .unwrap_or_default();
            Ok(Response::html(
                200,
                pages::logout_form(&token, rd.as_deref()),
            ))
        }
        Method::POST => {
            let session = req.session.map(|s| s.session.clone());
            if session.is_some()
                && !same_origin(app, req)
                && !token_matches(app, req, req.form_param("csrf").as_deref())
            {
                return Err(Error::Forbidden(
                    "the sign-out request did not come from this site".into(),
                ));
            }
            let rd_raw = req.form_param("rd").or_else(|| req.query_param("rd"));
            let rd = safe_target(
                rd_raw.as_deref(),
                &config.public_url,
                &config.allowed_redirect_hosts,
            );
            let mut cookies = app.sessions.destroy(req.cookies).await;
            if let Some(bridge) = &app.bridge {
                cookies.push(bridge.clear_cookie(app.secure));
                if session.is_some() {
                    revoke_clearml_token(bridge, req).await;
                }
            }
            if let Some(s) = &session {
                revoke_tokens(app, s).await;
            }
            let location = session
                .as_deref()
                .and_then(|s| idp_logout_url(app, s, &rd))
                .unwrap_or(rd);
            if let Some(s) = &session {
                tracing::info!(user = %s.identity.user, provider = %s.identity.provider, "logged out");
            }
            Ok(Response::redirect(303, &location).with_cookies(cookies))
        }
        _ => Err(Error::MethodNotAllowed),
    }
}

/// Revoke the browser's ClearML token at the API server (`auth.logout` with that token), as the
/// web app's own logout does; a failure only ends up in the log.
async fn revoke_clearml_token(bridge: &crate::clearml::Bridge, req: &Request<'_>) {
    let Some(token) = req.cookies.get(&bridge.config.cookie_name) else {
        return;
    };
    if token.is_empty() {
        return;
    }
    match bridge.revoke(token).await {
        Ok(()) => tracing::debug!("ClearML token revoked"),
        Err(e) => tracing::warn!(error = %e, "ClearML token not revoked at logout"),
    }
}

/// Revoke the session's tokens at the IdP's revocation endpoint, when it has one.
async fn revoke_tokens(app: &App, session: &Session) {
    let registry = app.registry.load_full();
    let Some(provider) = registry.get(&session.identity.provider) else {
        return;
    };
    if let Some(t) = &session.refresh_token {
        provider.revoke(&t.expose(), "refresh_token").await;
    }
    if let Some(t) = &session.access_token {
        provider.revoke(&t.expose(), "access_token").await;
    }
}

/// A token bound to this browser's session cookie and our secret: stateless, so it works
/// with both stores, and useless for any other session.
pub fn csrf_token(app: &App, req: &Request<'_>) -> String {
    let names = &app.cookie_names;
    let cookie = req
        .cookies
        .get(names.session())
        .or_else(|| req.cookies.get(&names.chunk(0)))
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"sso-proxy logout csrf\0");
    h.update(app.config.session.secret.expose());
    h.update(cookie.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

fn token_matches(app: &App, req: &Request<'_>, given: Option<&str>) -> bool {
    given.is_some_and(|g| constant_time_eq(g.as_bytes(), csrf_token(app, req).as_bytes()))
}

fn same_origin(app: &App, req: &Request<'_>) -> bool {
    if req.header("sec-fetch-site") == Some("same-origin") {
        return true;
    }
    let ours = app.config.public_url.origin().ascii_serialization();
    req.header("origin").is_some_and(|o| o == ours)
}

/// RP-initiated logout at the IdP (`idp_logout`), with `id_token_hint`.
pub(crate) fn idp_logout_url(app: &App, session: &Session, rd: &str) -> Option<String> {
    let registry = app.registry.load();
    if registry.get_saml(&session.identity.provider).is_some() {
        return crate::providers::saml::logout_redirect(app, session, rd);
    }
    let provider = registry.get(&session.identity.provider)?;
    if !provider.config.idp_logout {
        return None;
    }
    let back = app.config.public_url.join(rd).ok()?;
    let meta = provider.metadata()?;
    if provider.config.preset == Preset::Cognito {
        // Cognito's own logout: `<hosted UI>/logout?client_id=&logout_uri=`.
        let mut url = match meta.end_session_endpoint.clone() {
            Some(u) => u,
            None => meta.authorization_endpoint.join("/logout").ok()?,
        };
        url.query_pairs_mut()
            .append_pair("client_id", &provider.config.client_id)
            .append_pair("logout_uri", back.as_str());
        return Some(url.into());
    }
    let mut url = meta.end_session_endpoint.clone()?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(hint) = &session.id_token {
            q.append_pair("id_token_hint", &hint.expose());
        }
        q.append_pair("client_id", &provider.config.client_id);
        q.append_pair("post_logout_redirect_uri", back.as_str());
    }
    Some(url.into())
}
