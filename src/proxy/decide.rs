//! `decide`: the pure routing decision for one request (DESIGN section 2, step 3). No I/O; the
//! caller has already normalised the path and looked up the session.

use http::{HeaderMap, Method};
use regex::Regex;

use crate::config::RouteRule;

/// What the proxy does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// One of our own endpoints answers.
    Own(OwnRoute),
    /// Forward upstream; identity headers are added when there is a session.
    Forward,
    /// Unauthenticated browser navigation: 302 to the login.
    RedirectToLogin,
    /// Unauthenticated API/XHR/non-GET request: 401.
    Unauthenticated,
}

/// Our own endpoints (DESIGN section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnRoute {
    Callback(String),
    Login,
    Logout,
    UserInfo,
    ForwardAuth,
    /// `/_sso/auth/<original path>`: Envoy's `ext_authz` HTTP service appends the request's
    /// path and allows only 200.
    ExtAuthz,
    Healthz,
    Readyz,
    Jwks,
    SamlMetadata(String),
    BackchannelLogout(String),
    /// The admin plane: `/_sso/admin…` pages and the `/_sso/api/…` JSON API (the rest of the
    /// path after `/_sso/`).
    Admin(String),
    NotFound,
}

/// The request as `decide` sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// Already normalised.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// Compiled routing rules from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub skip_auth: Vec<RouteRule>,
    pub api_routes: Vec<Regex>,
}

impl Routes {
    fn skips_auth(&self, method: &Method, path: &str) -> bool {
        self.skip_auth
            .iter()
            .any(|r| r.method.as_ref().is_none_or(|m| m == method) && r.path.is_match(path))
    }

    fn is_api_route(&self, path: &str) -> bool {
        self.api_routes.iter().any(|r| r.is_match(path))
    }
}

/// Decide what happens to a request.
pub fn decide(req: RequestView<'_>, has_session: bool, routes: &Routes) -> Decision {
    if let Some(route) = own_route(req.path) {
        return Decision::Own(route);
    }
    if has_session || routes.skips_auth(req.method, req.path) {
        return Decision::Forward;
    }
    if is_browser_navigation(req) && !routes.is_api_route(req.path) {
        Decision::RedirectToLogin
    } else {
        Decision::Unauthenticated
    }
}

/// `/callback_<id>` (any well-formed id: an unknown one gets a clear 400) and `/_sso/*`.
fn own_route(path: &str) -> Option<OwnRoute> {
    if let Some(id) = path.strip_prefix("/callback_") {
        let well_formed = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        return well_formed.then(|| OwnRoute::Callback(id.to_owned()));
    }
    let rest = path
        .strip_prefix("/_sso/")
        .or_else(|| (path == "/_sso").then_some(""))?;
    if rest == "admin" || rest.starts_with("admin/") || rest.starts_with("api/") {
        return Some(OwnRoute::Admin(rest.to_owned()));
    }
    let route = match rest {
        "login" => OwnRoute::Login,
        "logout" => OwnRoute::Logout,
        "userinfo" => OwnRoute::UserInfo,
        "auth" => OwnRoute::ForwardAuth,
        "healthz" => OwnRoute::Healthz,
        "readyz" => OwnRoute::Readyz,
        "jwks.json" => OwnRoute::Jwks,
        other => {
            let saml = other
                .strip_prefix("saml/")
                .and_then(|r| r.strip_suffix("/metadata"));
            let backchannel = other.strip_prefix("backchannel_logout/");
            match (saml, backchannel) {
                _ if other.starts_with("auth/") => OwnRoute::ExtAuthz,
                (Some(id), _) if !id.contains('/') => OwnRoute::SamlMetadata(id.to_owned()),
                (_, Some(id)) if !id.contains('/') => OwnRoute::BackchannelLogout(id.to_owned()),
                _ => OwnRoute::NotFound,
            }
        }
    };
    Some(route)
}

/// DESIGN section 4: GET/HEAD, navigate (or HTML accepted without Sec-Fetch-Mode), not XHR.
pub fn is_browser_navigation(req: RequestView<'_>) -> bool {
    if req.method != Method::GET && req.method != Method::HEAD {
        return false;
    }
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-requested-with").is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest")) {
        return false;
    }
    match header("sec-fetch-mode") {
        Some(mode) => mode.eq_ignore_ascii_case("navigate"),
        None => req
            .headers
            .get_all("accept")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("text/html")),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
