//! `GET /_sso/userinfo`: the current session's identity as JSON; 401 without one.

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Request, Response};
use crate::app::App;

pub fn handle(app: &App, req: &Request<'_>) -> Response {
    let Some(loaded) = req.session else {
        return unauthenticated(app);
    };
    let s = &loaded.session;
    let id = &s.identity;
    let expires_at = i64::try_from(s.expires_at)
        .ok()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok());
    Response::json(
        200,
        &json!({
            "user": id.user,
            "email": id.email,
            "preferred_username": id.preferred_username,
            "name": id.name,
            "given_name": id.given_name,
            "family_name": id.family_name,
            "picture": id.picture,
            "groups": id.groups,
            "admin": id.admin,
            "provider": id.provider,
            "expires_at": expires_at,
        }),
    )
}

/// The 401 body every unauthenticated API answer uses.
pub fn unauthenticated(app: &App) -> Response {
    unauthenticated_with(app, None)
}

pub fn unauthenticated_with(app: &App, rd: Option<&str>) -> Response {
    let mut login = app.config.public_url.clone();
    login.set_path("/_sso/login");
    if let Some(rd) = rd {
        login.query_pairs_mut().append_pair("rd", rd);
    }
    Response::json(
        401,
        &json!({"error": "unauthenticated", "login_url": login.as_str()}),
    )
}
