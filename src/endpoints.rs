//! Our own routes (DESIGN section 4): the login chooser, the OIDC callback, logout, userinfo,
//! forward-auth and health. Each handler takes a [`Request`] and returns a [`Response`]; the
//! proxy writes it.

pub mod backchannel_logout;
pub mod callback;
pub mod forward_auth;
pub mod health;
pub mod login;
pub mod login_finish;
pub mod logout;
pub mod pages;
pub mod redirect;
pub mod saml_acs;
pub mod saml_login;
pub mod saml_metadata;
pub mod userinfo;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, Method};

use crate::app::App;
use crate::error::Error;
use crate::proxy::decide::OwnRoute;
use crate::session::{LoadedSession, RequestCookies};

/// A request to one of our endpoints.
pub struct Request<'a> {
    pub method: &'a Method,
    /// Normalised path.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub cookies: &'a RequestCookies,
    pub session: Option<&'a LoadedSession>,
    /// Form body of a POST (bounded by the proxy).
    pub body: Bytes,
    pub request_id: &'a str,
}

impl Request<'_> {
    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn form_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(&self.body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response from one of our endpoints.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Response {
            status,
            headers: vec![
                (CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body: body.into(),
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        let mut r = Response::new(status, "text/html; charset=utf-8", body);
        r.headers.push((
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
        ));
        r.headers.push((
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ));
        r
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response::new(status, "application/json", value.to_string())
    }

    pub fn text(status: u16, body: &'static str) -> Self {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    /// A redirect; `location` must already be safe.
    pub fn redirect(status: u16, location: &str) -> Self {
        let mut r = Response::new(status, "text/plain; charset=utf-8", Bytes::new());
        match HeaderValue::from_str(location) {
            Ok(v) => r.headers.push((LOCATION, v)),
            Err(_) => r.headers.push((LOCATION, HeaderValue::from_static("/"))),
        }
        r
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Add `Set-Cookie` values; a value that is not a valid header is dropped and logged.
    pub fn with_cookies<I: IntoIterator<Item = String>>(mut self, cookies: I) -> Self {
        for c in cookies {
            match HeaderValue::try_from(c) {
                Ok(v) => self.headers.push((SET_COOKIE, v)),
                Err(_) => tracing::warn!("dropped a Set-Cookie value that is not a valid header"),
            }
        }
        self
    }
}

/// Answer one of our routes. Errors become their page here, so the proxy only writes.
pub async fn handle(app: &App, route: OwnRoute, req: &Request<'_>) -> Response {
    let callback = match &route {
        // A Test Provider login is no login: it is not counted.
        OwnRoute::Callback(_) if crate::admin::test_login::owns(app, req) => None,
        OwnRoute::Callback(id) => Some(id.clone()),
        _ => None,
    };
    let result = match route {
        OwnRoute::Callback(id) if crate::admin::test_login::owns(app, req) => {
            crate::admin::test_login::callback(app, &id, req).await
        }
        OwnRoute::Callback(id) if app.registry.load().get_saml(&id).is_some() => {
            saml_acs::handle(app, &id, req).await
        }
        OwnRoute::Callback(id) => callback::handle(app, &id, req).await,
        OwnRoute::Login => login::handle(app, req).await,
        OwnRoute::Logout => logout::handle(app, req).await,
        OwnRoute::UserInfo => Ok(userinfo::handle(app, req)),
        OwnRoute::ForwardAuth => Ok(forward_auth::handle(app, req, 202)),
        OwnRoute::ExtAuthz => Ok(forward_auth::handle(app, req, 200)),
        OwnRoute::Healthz => Ok(health::healthz()),
        OwnRoute::Readyz => Ok(health::readyz(app)),
        OwnRoute::Jwks => Ok(match &app.identity_signer {
            Some(signer) => Response::json(200, signer.jwks()),
            None => Response::json(200, &serde_json::json!({"keys": []})),
        }),
        OwnRoute::BackchannelLogout(id) => Ok(backchannel_logout::handle(app, &id, req).await),
        OwnRoute::SamlMetadata(id) => saml_metadata::handle(app, &id, req),
        OwnRoute::Admin(rest) => Ok(crate::admin::handle(app, &rest, req).await),
        OwnRoute::NotFound => Err(Error::NotFound),
    };
    if let Some(id) = &callback {
        count_login(app, id, &result);
    }
    match result {
        Ok(response) => response,
        Err(e) => {
            let response = crate::error::to_response(&e, req, app);
            match callback.and(used_pending_cookie(app, req)) {
                Some(clear) => response.with_cookies([clear]),
                None => response,
            }
        }
    }
}

/// A failed callback: the `Set-Cookie` clearing the pending-login cookie its `state` (OIDC)
/// or `RelayState` (SAML) names, when the browser sent one. That login is over either way.
fn used_pending_cookie(app: &App, req: &Request<'_>) -> Option<String> {
    let state = req
        .query_param("state")
        .or_else(|| req.form_param("RelayState"))?;
    let name = app.pending.cookie_name(&state);
    req.cookies
        .get(&name)
        .is_some()
        .then(|| app.pending.clear(&state))
}

/// A callback that set our session cookie is a login; an error is a failed one; anything else
/// (a SAML logout response) is neither. An id the registry does not know is counted as
/// `(unknown)`, so a scan of `/callback_<random>` cannot grow the metrics.
fn count_login(app: &App, id: &str, result: &Result<Response, Error>) {
    let connection = if app.registry.load().contains(id) {
        id
    } else {
        "(unknown)"
    };
    let session_cookie = app.cookie_names.session();
    match result {
        Ok(r) => {
            let created = r.headers.iter().any(|(n, v)| {
                n == SET_COOKIE && v.as_bytes().starts_with(session_cookie.as_bytes())
            });
            if created {
                app.metrics.login_succeeded(connection);
            }
        }
        Err(e) => app.metrics.login_failed(connection, e.login_failure()),
    }
}
