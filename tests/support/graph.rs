//! A Microsoft Graph stand-in for Entra ID's group overage: `POST /v1.0/me/getMemberGroups`
//! with the user's access token answers `{"value": [<group ids>]}`. Configure the proxy's
//! `graph_url` with [`Graph::url`]. It records every call and can be told to fail.

use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};

use super::http_server::{self, Body, Handler, ServerThread};

/// One call to the stand-in.
#[derive(Clone, Debug)]
pub struct GraphCall {
    pub method: String,
    pub path: String,
    /// The `Authorization` header as received.
    pub authorization: Option<String>,
    pub body: Value,
}

struct State {
    groups: Vec<String>,
    fail_with: Option<u16>,
    calls: Vec<GraphCall>,
}

pub struct Graph {
    /// `http://127.0.0.1:<port>`: the proxy's `graph_url`.
    pub url: String,
    state: Arc<Mutex<State>>,
    _server: ServerThread,
}

impl Graph {
    /// Start the stand-in; every bearer token gets `groups`.
    pub fn start(groups: &[&str]) -> Self {
        let state = Arc::new(Mutex::new(State {
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            fail_with: None,
            calls: Vec::new(),
        }));
        let shared = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let state = shared.clone();
            Box::pin(async move { handle(req, state).await })
        });
        let server = ServerThread::start("graph", handler);
        Self {
            url: server.url(),
            state,
            _server: server,
        }
    }

    /// Answer every call with this HTTP status (`None`: work again).
    pub fn fail_with(&self, status: Option<u16>) {
        self.state.lock().expect("lock").fail_with = status;
    }

    pub fn calls(&self) -> Vec<GraphCall> {
        self.state.lock().expect("lock").calls.clone()
    }
}

async fn handle(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let raw = http_server::read_body(req.into_body()).await;
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let mut s = state.lock().expect("lock");
    s.calls.push(GraphCall {
        method: method.to_string(),
        path: path.clone(),
        authorization: authorization.clone(),
        body,
    });
    if let Some(status) = s.fail_with {
        return http_server::json_response(
            status,
            &json!({"error": {"code": "serviceNotAvailable", "message": "stand-in failure"}}),
        );
    }
    if method != Method::POST || path != "/v1.0/me/getMemberGroups" {
        return http_server::json_response(
            404,
            &json!({"error": {"code": "Request_ResourceNotFound"}}),
        );
    }
    if !authorization.is_some_and(|a| a.starts_with("Bearer ") && a.len() > "Bearer ".len()) {
        return http_server::json_response(
            401,
            &json!({"error": {"code": "InvalidAuthenticationToken"}}),
        );
    }
    http_server::json_response(
        200,
        &json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
            "value": s.groups,
        }),
    )
}
