//! `GET /_sso/auth`: forward-auth for nginx `auth_request` and Traefik `forwardAuth`. 202 with
//! `X-Auth-Request-*` for a session, 401 without, 403 when the user is in none of
//! `?allowed_groups=`. `/_sso/auth/<anything>` is the same check for Envoy's `ext_authz` HTTP
//! service, which appends the original path to its `path_prefix` and allows only 200.

use super::userinfo::unauthenticated;
use super::{Request, Response};
use crate::app::App;
use crate::proxy::headers::auth_request_identity;

/// `allowed`: the status of a positive answer (202, or 200 for Envoy).
pub fn handle(app: &App, req: &Request<'_>, allowed: u16) -> Response {
    let Some(loaded) = req.session else {
        return unauthenticated(app);
    };
    let identity = &loaded.session.identity;
    if let Some(allowed) = req.query_param("allowed_groups") {
        let allowed: Vec<&str> = allowed
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .collect();
        if !allowed.is_empty()
            && !identity
                .groups
                .iter()
                .any(|g| allowed.contains(&g.as_str()))
        {
            tracing::debug!(user = %identity.user, "forward-auth: no allowed group");
            return Response::json(403, &serde_json::json!({"error": "forbidden"}));
        }
    }
    let mut resp = Response::new(allowed, "text/plain; charset=utf-8", bytes::Bytes::new());
    resp.headers.extend(auth_request_identity(identity));
    resp
}
