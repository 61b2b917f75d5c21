//! The protected application: answers every request with 200 JSON describing what it received
//! (`{"method","path","query","headers":[[name,value],...],"body"}`) and records each request.
//! A `Upgrade: websocket` request is accepted and every message is echoed back.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::http_server::{self, Body, Handler, ServerThread};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EchoRequest {
    pub method: String,
    /// The request target's path exactly as received (not decoded).
    pub path: String,
    pub query: Option<String>,
    /// Header names are lower-case (HTTP/1 header names are case-insensitive).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl EchoRequest {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The only value of header `name`; panics when it was sent more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.header_all(name);
        assert!(
            all.len() <= 1,
            "upstream got header {name} {} times: {all:?}",
            all.len()
        );
        all.first().copied()
    }

    /// Cookie names in the `Cookie` header(s).
    pub fn cookie_names(&self) -> Vec<String> {
        self.cookies().into_iter().map(|(n, _)| n).collect()
    }

    /// `(name, value)` pairs from the `Cookie` header(s).
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.header_all("cookie")
            .iter()
            .flat_map(|h| h.split(';'))
            .filter_map(|kv| {
                let kv = kv.trim();
                if kv.is_empty() {
                    return None;
                }
                let (n, v) = kv.split_once('=').unwrap_or((kv, ""));
                Some((n.to_owned(), v.to_owned()))
            })
            .collect()
    }
}

pub struct EchoUpstream {
    pub port: u16,
    pub url: String,
    requests: Arc<Mutex<Vec<EchoRequest>>>,
    _server: ServerThread,
}

impl EchoUpstream {
    pub fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let handler: Handler = Arc::new(move |req| {
            let recorded = recorded.clone();
            Box::pin(async move { handle(req, recorded).await })
        });
        let server = ServerThread::start("echo-upstream", handler);
        Self {
            port: server.port(),
            url: server.url(),
            requests,
            _server: server,
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<EchoRequest> {
        self.requests.lock().expect("lock").clone()
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    /// The most recent request; panics when there was none.
    pub fn last(&self) -> EchoRequest {
        self.requests
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("the upstream received no request")
    }

    /// The most recent request whose path is `path`.
    pub fn last_to(&self, path: &str) -> Option<EchoRequest> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .find(|r| r.path == path)
            .cloned()
    }
}

async fn handle(
    mut req: Request<Incoming>,
    recorded: Arc<Mutex<Vec<EchoRequest>>>,
) -> hyper::Response<Body> {
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect::<Vec<_>>();
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let is_websocket = req
        .headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let ws_key = req.headers().get("sec-websocket-key").cloned();

    if is_websocket {
        let record = EchoRequest {
            method,
            path,
            query,
            headers,
            body: String::new(),
        };
        recorded.lock().expect("lock").push(record);
        let Some(key) = ws_key else {
            return http_server::response(400, "text/plain", "missing Sec-WebSocket-Key");
        };
        let upgrade = hyper::upgrade::on(&mut req);
        // Answer the upgrade after a few milliseconds, like a real app server: pingora 0.9 can
        // tear a tunnel down when the 101 arrives within microseconds of the request
        // (cloudflare/pingora#946, see docs/deviations.md).
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let mut ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_text() || msg.is_binary() {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                } else if msg.is_close() {
                    break;
                }
            }
        });
        return hyper::Response::builder()
            .status(101)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
            .body(Body::default())
            .expect("valid response");
    }

    // `/slow?ms=N`: a slow app, answering N milliseconds after recording the request.
    let delay = (path == "/slow").then(|| {
        let ms = query
            .as_deref()
            .and_then(|q| q.strip_prefix("ms="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        std::time::Duration::from_millis(ms)
    });
    let body = String::from_utf8_lossy(&http_server::read_body(req.into_body()).await).into_owned();
    let record = EchoRequest {
        method,
        path,
        query,
        headers,
        body,
    };
    let json = serde_json::to_value(&record).expect("serialize");
    recorded.lock().expect("lock").push(record);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    http_server::json_response(200, &json)
}
