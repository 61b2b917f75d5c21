//! The JSON API under `/_sso/api/`:
//!
//! | method and path | what |
//! |---|---|
//! | `GET /connections`, `POST /connections` | list every connection (all sources); create one |
//! | `GET/PUT/DELETE /connections/<id>` | one connection; replace its settings; remove it |
//! | `POST /connections/<id>/active` `{"active": bool}` | activate or deactivate |
//! | `POST /connections/<id>/test` | Test Provider: a URL to open (body: unsaved settings, optional) |
//! | `POST /connections/test` | Test Provider for a new, unsaved connection |
//! | `GET /users` | users seen at login |
//! | `GET/POST /invites`, `DELETE /invites/<email>` | invites |
//! | `GET/POST /groups`, `DELETE /groups/<name>` | local groups |
//! | `GET /audit[?limit=N]` | the audit log, newest first |
//!
//! Errors are JSON: `{"error": "invalid", "problems": [{"field", "message"}]}` (400),
//! `forbidden` (403), `not_found` (404), `method_not_allowed` (405), `read_only` / `exists`
//! (409). Secrets are write-only: a connection shows `client_secret_set` (or
//! `sp_private_key_set`), never the value.

use http::Method;
use serde_json::{json, Map, Value};

use super::auth::{self, Actor, Denied};
use super::{connections, directory, test_login};
use crate::app::App;
use crate::endpoints::{Request, Response};
use crate::store::StoreError;

/// One validation problem, naming the connection key (or body field) it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: &str, message: &str) -> Self {
        Problem {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Why an API call failed.
#[derive(Debug)]
pub enum ApiError {
    Invalid(Vec<Problem>),
    Forbidden(&'static str),
    NotFound,
    MethodNotAllowed,
    ReadOnly(String),
    Exists(String),
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl ApiError {
    fn response(&self, request_id: &str) -> Response {
        let (status, body) = match self {
            ApiError::Invalid(problems) => {
                let list: Vec<Value> = problems
                    .iter()
                    .map(|p| json!({"field": p.field, "message": p.message}))
                    .collect();
                (400, json!({"error": "invalid", "problems": list}))
            }
            ApiError::Forbidden(m) => (403, json!({"error": "forbidden", "message": m})),
            ApiError::NotFound => (404, json!({"error": "not_found"})),
            ApiError::MethodNotAllowed => (405, json!({"error": "method_not_allowed"})),
            ApiError::ReadOnly(m) => (409, json!({"error": "read_only", "message": m})),
            ApiError::Exists(m) => (409, json!({"error": "exists", "message": m})),
            ApiError::Store(e) => {
                tracing::error!(error = %e, request_id, "admin store error");
                (
                    500,
                    json!({"error": "store", "message": "the state database failed"}),
                )
            }
        };
        let mut body = body;
        body["request_id"] = request_id.into();
        Response::json(status, &body)
    }
}

/// Answer `/_sso/api/<path>`. Without an admin session or the admin token: 403.
pub async fn handle(app: &App, path: &str, req: &Request<'_>) -> Response {
    let actor = match auth::api_actor(app, req) {
        Ok(actor) => actor,
        Err(Denied::NoSession) => {
            let reason = "administrators only: sign in as an admin or send the admin token";
            return ApiError::Forbidden(reason).response(req.request_id);
        }
        Err(Denied::Forbidden(reason)) => {
            return ApiError::Forbidden(reason).response(req.request_id)
        }
    };
    match route(app, &actor, path, req).await {
        Ok((204, _)) => Response::new(204, "application/json", bytes::Bytes::new()),
        Ok((status, value)) => Response::json(status, &value),
        Err(e) => e.response(req.request_id),
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The JSON object in the body (`{}` when empty).
pub fn body_object(req: &Request<'_>) -> Result<Map<String, Value>, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::Invalid(vec![Problem::new(
            "",
            "the body must be a JSON object",
        )])),
        Err(e) => Err(ApiError::Invalid(vec![Problem::new(
            "",
            &format!("the body is not valid JSON: {e}"),
        )])),
    }
}

type Answer = Result<(u16, Value), ApiError>;

async fn route(app: &App, actor: &Actor, path: &str, req: &Request<'_>) -> Answer {
    let segments: Vec<String> = path.trim_end_matches('/').split('/').map(decode).collect();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method.clone();
    match (parts.as_slice(), method) {
        (["connections"], Method::GET) => {
            Ok((200, json!({"connections": connections::list(app)?})))
        }
        (["connections"], Method::POST) => {
            let created = connections::create(app, actor, body_object(req)?).await?;
            Ok((201, created))
        }
        (["connections", "test"], Method::POST) => test(app, actor, None, req).await,
        (["connections", id], Method::GET) => connections::describe(app, id)
            .map(|c| (200, c))
            .ok_or(ApiError::NotFound),
        (["connections", id], Method::PUT) => Ok((
            200,
            connections::update(app, actor, id, body_object(req)?).await?,
        )),
        (["connections", id], Method::DELETE) => {
            connections::delete(app, actor, id).await?;
            Ok((204, Value::Null))
        }
        (["connections", id, "active"], Method::POST) => {
            let body = body_object(req)?;
            let Some(active) = body.get("active").and_then(Value::as_bool) else {
                return Err(ApiError::Invalid(vec![Problem::new(
                    "active",
                    "required: true or false",
                )]));
            };
            Ok((200, connections::set_active(app, actor, id, active).await?))
        }
        (["connections", id, "test"], Method::POST) => test(app, actor, Some(id), req).await,
        (["users"], Method::GET) => Ok((200, directory::users(app)?)),
        (["invites"], Method::GET) => Ok((200, directory::invites(app)?)),
        (["invites"], Method::POST) => {
            Ok((201, directory::invite(app, actor, &body_object(req)?)?))
        }
        (["invites", email], Method::DELETE) => {
            directory::uninvite(app, actor, email)?;
            Ok((204, Value::Null))
        }
        (["groups"], Method::GET) => Ok((200, directory::groups(app)?)),
        (["groups"], Method::POST) => {
            Ok((201, directory::add_group(app, actor, &body_object(req)?)?))
        }
        (["groups", name], Method::DELETE) => {
            directory::delete_group(app, actor, name)?;
            Ok((204, Value::Null))
        }
        (["audit"], Method::GET) => {
            let limit = req
                .query_param("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(200);
            Ok((200, directory::audit(app, limit)?))
        }
        (
            ["connections"]
            | ["connections", _]
            | ["connections", _, "active" | "test"]
            | ["users"]
            | ["invites"]
            | ["invites", _]
            | ["groups"]
            | ["groups", _]
            | ["audit"],
            _,
        ) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

async fn test(app: &App, actor: &Actor, id: Option<&str>, req: &Request<'_>) -> Answer {
    let target = connections::test_target(app, id, body_object(req)?).await?;
    let target_id = target.id().to_owned();
    let url = test_login::issue(app, target);
    app.admin.audit(
        app.now(),
        actor.label(),
        "connection.test",
        &target_id,
        None,
    );
    let callback = app
        .config
        .public_url
        .join(&format!("callback_{target_id}"))
        .map(String::from)
        .unwrap_or_default();
    Ok((
        200,
        json!({
            "url": url,
            "connection": target_id,
            "callback_url": callback,
            "expires_in": crate::session::pending::PENDING_TTL,
        }),
    ))
}
