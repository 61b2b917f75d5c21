//! A fast OpenID Provider, for benchmarks only: discovery, JWKS, an authorization endpoint that
//! logs the user in at once (302 straight back with a code), and a token endpoint that checks
//! the client (`client_secret_basic` or `_post`), the redirect URI and PKCE S256, then signs a
//! fresh ID token (nonce included) with a key generated once at start-up.
//!
//! Codes are stateless (the login's parameters, base64url-encoded into the code itself), so the
//! OP keeps nothing per login. It is not a secure OP: codes are neither signed nor single-use.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::tokens::{self, SigningKey};
use super::Args;

struct Op {
    issuer: String,
    client_id: String,
    client_secret: String,
    key: SigningKey,
    jwks: Bytes,
    discovery: Bytes,
    user: String,
}

pub fn main(args: &Args) -> Result<(), String> {
    let port: u16 = args.num("port", 0)?;
    let threads: usize = args.num("threads", 1)?;
    let alg = args.get("alg").unwrap_or("ES256");
    let key = match alg {
        "ES256" => tokens::SigningKey::es256("fast-op-ec"),
        "RS256" => tokens::SigningKey::rs256("fast-op-rsa"),
        other => return Err(format!("--alg {other}: use ES256 or RS256")),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let issuer = format!("http://{addr}");
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [alg],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "authorization_response_iss_parameter_supported": true,
        });
        let op = Arc::new(Op {
            client_id: args.get("client-id").unwrap_or("proxy").to_owned(),
            client_secret: args
                .get("client-secret")
                .unwrap_or("proxy-secret")
                .to_owned(),
            user: args.get("user").unwrap_or("alice").to_owned(),
            jwks: Bytes::from(tokens::jwks(&[&key]).to_string()),
            discovery: Bytes::from(discovery.to_string()),
            key,
            issuer: issuer.clone(),
        });
        println!("READY {issuer}");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let op = op.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let op = op.clone();
                    async move { Ok::<_, Infallible>(handle(&op, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

type Resp = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = "no-store".parse() {
        r.headers_mut().insert(hyper::header::CACHE_CONTROL, v);
    }
    r
}

fn error(status: StatusCode, code: &str) -> Resp {
    respond(
        status,
        "application/json",
        json!({ "error": code }).to_string(),
    )
}

fn form(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn handle(op: &Op, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/.well-known/openid-configuration") => {
            respond(StatusCode::OK, "application/json", op.discovery.clone())
        }
        (&Method::GET, "/jwks") => respond(StatusCode::OK, "application/json", op.jwks.clone()),
        (&Method::GET, "/authorize") => {
            let query = form(req.uri().query().unwrap_or_default().as_bytes());
            authorize(op, &query)
        }
        (&Method::POST, "/token") => {
            let auth = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match req.into_body().collect().await {
                Ok(body) => token(op, auth.as_deref(), &form(&body.to_bytes())),
                Err(_) => error(StatusCode::BAD_REQUEST, "invalid_request"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

/// Logs the user in at once: 302 to the redirect URI with a code carrying the login's parameters.
fn authorize(op: &Op, q: &[(String, String)]) -> Resp {
    let (Some("code"), Some(client_id), Some(redirect_uri), Some(state)) = (
        param(q, "response_type"),
        param(q, "client_id"),
        param(q, "redirect_uri"),
        param(q, "state"),
    ) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    if client_id != op.client_id {
        return error(StatusCode::BAD_REQUEST, "unauthorized_client");
    }
    if param(q, "code_challenge_method").is_some_and(|m| m != "S256") {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let grant = json!({
        "r": redirect_uri,
        "n": param(q, "nonce"),
        "c": param(q, "code_challenge"),
        "t": now(),
    });
    let code = URL_SAFE_NO_PAD.encode(grant.to_string());
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state)
        .append_pair("iss", &op.issuer);
    let mut r = respond(StatusCode::FOUND, "text/plain", Bytes::new());
    if let Ok(v) = location.as_str().parse() {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    r
}

/// The client's id and secret from Basic (form-encoded, RFC 6749 2.3.1) or from the form.
fn client_credentials(auth: Option<&str>, f: &[(String, String)]) -> Option<(String, String)> {
    if let Some(basic) = auth.and_then(|a| a.strip_prefix("Basic ")) {
        let raw = STANDARD.decode(basic.trim()).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (id, secret) = raw.split_once(':')?;
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return Some((dec(id)?, dec(secret)?));
    }
    Some((
        param(f, "client_id")?.to_owned(),
        param(f, "client_secret")?.to_owned(),
    ))
}

fn token(op: &Op, auth: Option<&str>, f: &[(String, String)]) -> Resp {
    match client_credentials(auth, f) {
        Some((id, secret)) if id == op.client_id && secret == op.client_secret => {}
        _ => return error(StatusCode::UNAUTHORIZED, "invalid_client"),
    }
    if param(f, "grant_type") != Some("authorization_code") {
        return error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let grant: Option<Value> = param(f, "code")
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|raw| serde_json::from_slice(&raw).ok());
    let Some(grant) = grant else {
        return error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let issued = grant["t"].as_u64().unwrap_or(0);
    if grant["r"].as_str() != param(f, "redirect_uri") || now().saturating_sub(issued) > 60 {
        return error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    if let Some(challenge) = grant["c"].as_str() {
        let verifier = param(f, "code_verifier").unwrap_or_default();
        if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
            return error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
    }
    let nonce = grant["n"].as_str().unwrap_or_default();
    let claims = tokens::id_token_claims(&op.issuer, &op.client_id, &op.user, nonce, now());
    let id_token = op.key.sign(&claims);
    let mut access = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut access);
    let body = json!({
        "access_token": URL_SAFE_NO_PAD.encode(access),
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid email profile",
        "id_token": id_token,
    });
    respond(StatusCode::OK, "application/json", body.to_string())
}
