//! `POST /_sso/backchannel_logout/<id>`: the IdP tells us a user's session ended. 200 when the
//! logout token is valid; 400 with `invalid_request` otherwise (and nothing ends).

use http::Method;
use serde_json::json;

use super::{Request, Response};
use crate::app::App;
use crate::providers::backchannel::LogoutTokenError;

pub async fn handle(app: &App, id: &str, req: &Request<'_>) -> Response {
    if req.method != Method::POST {
        return Response::json(405, &json!({"error": "invalid_request"}));
    }
    let registry = app.registry.load_full();
    let Some(provider) = registry.get(id) else {
        return Response::json(
            400,
            &json!({"error": "invalid_request", "error_description": "unknown connection"}),
        );
    };
    let Some(token) = req.form_param("logout_token") else {
        return Response::json(
            400,
            &json!({"error": "invalid_request", "error_description": "missing logout_token"}),
        );
    };
    match app
        .revocations
        .logout(provider, &token, app.now(), &app.once)
        .await
    {
        Ok((kind, value)) => match app.sessions.end_matching(id, kind, &value).await {
            Ok(ended) => {
                tracing::debug!(provider = %id, kind, ended, "back-channel logout applied to the shared store");
                Response::json(200, &json!({}))
            }
            Err(e) => {
                tracing::warn!(provider = %id, error = %e, "back-channel logout could not reach the shared store");
                Response::json(
                    503,
                    &json!({"error": "temporarily_unavailable", "error_description": e.to_string()}),
                )
            }
        },
        Err(e @ LogoutTokenError::Unavailable(_)) => {
            tracing::warn!(provider = %id, error = %e, "back-channel logout could not be processed");
            Response::json(
                503,
                &json!({"error": "temporarily_unavailable", "error_description": e.to_string()}),
            )
        }
        Err(e) => {
            tracing::info!(provider = %id, error = %e, "back-channel logout refused");
            Response::json(
                400,
                &json!({"error": "invalid_request", "error_description": e.to_string()}),
            )
        }
    }
}
