//! The ClearML bridge's part of the request path: impersonation headers removed from browser
//! requests, `login.supported_modes` and `login.logout` planned for rewriting, and the user's
//! ClearML token re-issued before it runs out.

use std::sync::Arc;

use http::header::HeaderName;
use pingora::http::RequestHeader;

use super::decide::Decision;
use super::headers::CLEARML_PREFIXES;
use crate::app::App;
use crate::clearml::rewrite::{self, Rewrite, RewriteKind};
use crate::clearml::Bridge;
use crate::endpoints::logout::idp_logout_url;
use crate::session::{LoadedSession, RequestCookies, Session};

/// Remove `X-Clearml-`/`X-Trains-` `Impersonate-As` and `Act-As` (any case, `_` for `-`).
pub fn strip_impersonation(req: &mut RequestHeader) {
    let doomed: Vec<HeaderName> = req
        .headers
        .keys()
        .filter(|name| {
            // Allocation-free: header names are lower case; only `_` needs mapping.
            let n = name.as_str().as_bytes();
            CLEARML_PREFIXES.iter().any(|p| {
                p.len() == n.len()
                    && n.iter()
                        .zip(p.as_bytes())
                        .all(|(a, b)| *a == *b || (*a == b'_' && *b == b'-'))
            })
        })
        .cloned()
        .collect();
    for name in &doomed {
        tracing::debug!(header = %name, "impersonation header removed from a browser request");
        req.remove_header(name);
    }
}

/// Decide how the bridge treats a browser request to the API: `login.supported_modes` is
/// always forwarded and rewritten; `login.logout`/`auth.logout` is always forwarded (the API
/// server revokes the token of a lingering ClearML cookie too) and clears the ClearML cookie;
/// with a session it also ends our session and gets the IdP's logout URL.
pub async fn plan(
    app: &App,
    bridge: &Bridge,
    path: &str,
    cookies: &RequestCookies,
    loaded: Option<&LoadedSession>,
    decision: &mut Decision,
    set_cookies: &mut Vec<String>,
) -> Option<Rewrite> {
    match rewrite::for_path(path)? {
        RewriteKind::SupportedModes => {
            *decision = Decision::Forward;
            Some(Rewrite::SupportedModes {
                authenticated: loaded.is_some(),
            })
        }
        // Without a session only the web app's API path (`/api/...`) is let through.
        RewriteKind::Logout if loaded.is_none() && !path.starts_with("/api/") => None,
        RewriteKind::Logout => {
            *decision = Decision::Forward;
            let redirect_url = match loaded {
                Some(loaded) => {
                    set_cookies.extend(app.sessions.destroy(cookies).await);
                    tracing::info!(user = %loaded.session.identity.user, "ClearML logout ends the session");
                    idp_logout_url(app, &loaded.session, "/")
                }
                None => {
                    tracing::debug!("ClearML logout without a session: forwarded, cookie cleared");
                    None
                }
            };
            set_cookies.push(bridge.clear_cookie(app.secure));
            Some(Rewrite::Logout { redirect_url })
        }
    }
}

/// A fresh token when the browser's ClearML cookie is missing or near its end; its cookie is
/// added to `set_cookies`. Failures keep the request going with what the browser has.
pub async fn reissue_if_due(
    app: &App,
    bridge: &Bridge,
    session: &Arc<Session>,
    cookies: &RequestCookies,
    set_cookies: &mut Vec<String>,
) -> Option<String> {
    let user = session.clearml_user.as_deref()?;
    let current = cookies.get(&bridge.config.cookie_name);
    let due = current.is_none_or(|token| bridge.needs_reissue(token, app.now()));
    if !due {
        return None;
    }
    let browser_session = session.created_ms.to_string();
    let token = bridge.reissue(user, &browser_session, current).await?;
    set_cookies.push(bridge.cookie(&token, app.secure, bridge.config.token_lifetime.as_secs()));
    Some(token)
}
