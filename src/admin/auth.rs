//! Who may administer: a session whose identity is admin (`groups.admins` / `admin_role`), or,
//! for the JSON API, `Authorization: Bearer <admin.token>` (compared in constant time).
//! State-changing requests from a session also need a same-origin `Origin`/`Sec-Fetch-Site` or
//! the page's CSRF token (`X-CSRF-Token`); the bearer token is not a browser credential and
//! needs neither.

use base64::Engine as _;
use http::Method;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::endpoints::Request;
use crate::providers::id_token::constant_time_eq;

/// An authorised administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The bootstrap token.
    Token,
    /// An admin session: the user's e-mail, else their user id.
    User(String),
}

impl Actor {
    /// How the audit log names the actor.
    pub fn label(&self) -> &str {
        match self {
            Actor::Token => "admin-token",
            Actor::User(name) => name,
        }
    }
}

/// Why a request is not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No session (pages redirect to the login).
    NoSession,
    /// Everything else: 403 with this reason.
    Forbidden(&'static str),
}

/// The JSON API: the bearer token, or an admin session (with the same-origin/CSRF check for
/// state-changing methods).
pub fn api_actor(app: &App, req: &Request<'_>) -> Result<Actor, Denied> {
    if let Some(given) = bearer(req) {
        let Some(token) = &app.config.admin_token else {
            return Err(Denied::Forbidden("no admin token is configured"));
        };
        return if token_matches(token.expose(), given) {
            Ok(Actor::Token)
        } else {
            Err(Denied::Forbidden("the admin token is not valid"))
        };
    }
    let actor = session_actor(req)?;
    if changes_state(req.method) && !same_origin(app, req) && !csrf_matches(app, req) {
        return Err(Denied::Forbidden(
            "the request did not come from this site (send X-CSRF-Token)",
        ));
    }
    Ok(actor)
}

/// The pages: an admin session only.
pub fn page_actor(req: &Request<'_>) -> Result<Actor, Denied> {
    session_actor(req)
}

fn session_actor(req: &Request<'_>) -> Result<Actor, Denied> {
    let loaded = req.session.ok_or(Denied::NoSession)?;
    let identity = &loaded.session.identity;
    if !identity.admin {
        return Err(Denied::Forbidden("administrators only"));
    }
    let name = identity
        .email
        .clone()
        .unwrap_or_else(|| identity.user.clone());
    Ok(Actor::User(name))
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn bearer<'a>(req: &'a Request<'_>) -> Option<&'a str> {
    let value = req.header("authorization")?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Constant time whatever the lengths: both sides are hashed first.
fn token_matches(expected: &str, given: &str) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    constant_time_eq(&a, &b)
}

fn same_origin(app: &App, req: &Request<'_>) -> bool {
    if req.header("sec-fetch-site") == Some("same-origin") {
        return true;
    }
    let ours = app.config.public_url.origin().ascii_serialization();
    req.header("origin").is_some_and(|o| o == ours)
}

fn csrf_matches(app: &App, req: &Request<'_>) -> bool {
    req.header("x-csrf-token")
        .is_some_and(|given| constant_time_eq(given.as_bytes(), csrf_token(app, req).as_bytes()))
}

/// A token bound to this browser's session cookie and our secret (stateless; works with both
/// session stores), for the pages' `X-CSRF-Token`.
pub fn csrf_token(app: &App, req: &Request<'_>) -> String {
    let names = &app.cookie_names;
    let cookie = req
        .cookies
        .get(names.session())
        .or_else(|| req.cookies.get(&names.chunk(0)))
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"sso-proxy admin csrf\0");
    h.update(app.config.session.secret.expose());
    h.update(cookie.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_needs_the_exact_token() {
        assert!(token_matches("s3cret-token", "s3cret-token"));
        assert!(!token_matches("s3cret-token", "s3cret-toke"));
        assert!(!token_matches("s3cret-token", ""));
    }

    #[test]
    fn only_safe_methods_skip_the_origin_check() {
        assert!(!changes_state(&Method::GET));
        assert!(changes_state(&Method::POST));
        assert!(changes_state(&Method::PUT));
        assert!(changes_state(&Method::DELETE));
    }
}
