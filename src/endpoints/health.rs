//! `GET /_sso/healthz` (liveness) and `GET /_sso/readyz` (every active connection usable).

use super::Response;
use crate::app::App;

pub fn healthz() -> Response {
    Response::text(200, "ok\n")
}

pub fn readyz(app: &App) -> Response {
    let missing = app.not_ready();
    if missing.is_empty() {
        Response::json(200, &serde_json::json!({"ready": true}))
    } else {
        Response::json(
            503,
            &serde_json::json!({"ready": false, "not_ready": missing}),
        )
    }
}
