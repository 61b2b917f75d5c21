//! The upstream side of a forwarded request: the peer to connect to, and the request as the
//! app receives it (normalised path, identity headers, our cookies removed, `X-Forwarded-*`).

use std::net::IpAddr;

use http::header::{HeaderValue, AUTHORIZATION, COOKIE, HOST};
use http::Uri;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::Session as PingoraSession;

use super::headers::{header_pair, upstream_identity};
use crate::app::App;
use crate::session::{strip_own_cookies, Session};

/// The upstream peer; pingora pools connections per peer.
pub fn peer(app: &App) -> HttpPeer {
    let url = &app.config.upstream;
    let tls = url.scheme() == "https";
    let sni = url.host_str().unwrap_or_default().to_owned();
    let mut peer = HttpPeer::new(app.upstream_addr, tls, sni);
    peer.options.connection_timeout = Some(std::time::Duration::from_secs(10));
    peer
}

fn client_ip(session: &PingoraSession) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// Rewrite the request for the upstream.
pub fn prepare(
    app: &App,
    downstream: &PingoraSession,
    req: &mut RequestHeader,
    session: Option<&Session>,
    path_and_query: &str,
    request_id: &str,
) -> pingora::Result<()> {
    let uri: Uri = path_and_query.parse().map_err(|_| {
        pingora::Error::explain(
            pingora::ErrorType::InvalidHTTPHeader,
            "normalised path is not a URI",
        )
    })?;
    req.set_uri(uri);
    strip_cookies(app, req)?;
    forwarded_headers(app, downstream, req)?;
    req.insert_header("x-request-id", request_id)?;
    let Some(session) = session else {
        return Ok(());
    };
    for (name, value) in upstream_identity(&session.identity, &app.config.headers) {
        req.insert_header(name, value)?;
    }
    if app.config.headers.pass_access_token {
        if let Some((n, v)) = session
            .access_token
            .as_ref()
            .and_then(|t| header_pair("x-forwarded-access-token", &t.expose()))
        {
            req.insert_header(n, v)?;
        }
    }
    if app.config.headers.identity_token {
        let token = app
            .identity_signer
            .as_ref()
            .and_then(|s| s.token(session, app.now()));
        if let Some((n, v)) = token.and_then(|t| header_pair("x-sso-identity", &t)) {
            req.insert_header(n, v)?;
        }
    }
    if app.config.headers.pass_authorization {
        if let Some(v) = session
            .id_token
            .as_ref()
            .and_then(|t| HeaderValue::from_str(&format!("Bearer {}", t.expose())).ok())
        {
            req.insert_header(AUTHORIZATION, v)?;
        }
    }
    Ok(())
}

/// Remove our cookies from every `Cookie` header, keeping the app's own.
fn strip_cookies(app: &App, req: &mut RequestHeader) -> pingora::Result<()> {
    let values: Vec<HeaderValue> = req.headers.get_all(COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::with_capacity(values.len());
    let mut changed = false;
    for v in &values {
        match strip_own_cookies(v.as_bytes(), &app.cookie_names) {
            Some(s) => {
                changed |= s.as_bytes() != v.as_bytes();
                kept.push(s);
            }
            None => changed = true,
        }
    }
    if changed {
        req.remove_header(&COOKIE);
        if !kept.is_empty() {
            req.insert_header(COOKIE, kept.join("; "))?;
        }
    }
    Ok(())
}

/// `X-Forwarded-For/-Proto/-Host`: believed from `trusted_proxies` only, set by us otherwise.
fn forwarded_headers(
    app: &App,
    downstream: &PingoraSession,
    req: &mut RequestHeader,
) -> pingora::Result<()> {
    let ip = client_ip(downstream);
    let trusted = ip.is_some_and(|ip| app.config.trusted_proxies.iter().any(|n| n.contains(&ip)));
    let ip_text = ip.map(|i| i.to_string()).unwrap_or_default();
    let xff = match req
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) if trusted && !prev.is_empty() => format!("{prev}, {ip_text}"),
        _ => ip_text,
    };
    if !xff.is_empty() {
        req.insert_header("x-forwarded-for", xff)?;
    }
    if !trusted || req.headers.get("x-forwarded-proto").is_none() {
        req.insert_header("x-forwarded-proto", app.config.public_url.scheme())?;
    }
    if !trusted || req.headers.get("x-forwarded-host").is_none() {
        let host = req.headers.get(HOST).cloned().or_else(|| {
            app.config
                .public_url
                .host_str()
                .and_then(|h| HeaderValue::from_str(h).ok())
        });
        if let Some(h) = host {
            req.insert_header("x-forwarded-host", h)?;
        }
    }
    Ok(())
}

/// Set cookie `name` to `value` in the upstream `Cookie` header (added when absent).
pub fn replace_cookie(req: &mut RequestHeader, name: &str, value: &str) -> pingora::Result<()> {
    let mut parts: Vec<String> = req
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|p| !p.is_empty() && p.split_once('=').map_or(*p, |(n, _)| n.trim()) != name)
        .map(str::to_owned)
        .collect();
    parts.push(format!("{name}={value}"));
    req.remove_header(&COOKIE);
    req.insert_header(COOKIE, parts.join("; "))?;
    Ok(())
}
