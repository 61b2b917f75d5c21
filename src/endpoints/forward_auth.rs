//! `GET /_sso/auth`: forward-auth for nginx `auth_request`, Traefik `forwardAuth` and Envoy
//! `ext_authz`. 202 with `X-Auth-Request-*` for a session, 401 without, 403 when the user is in
//! none of `?allowed_groups=`.

use super::userinfo::unauthenticated;
use super::{Request, Response};
use crate::app::App;
use crate::proxy::headers::auth_request_identity;

pub fn handle(app: &App, req: &Request<'_>) -> Response {
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
    let mut resp = Response::new(202, "text/plain; charset=utf-8", bytes::Bytes::new());
    resp.headers.extend(auth_request_identity(identity));
    resp
}
