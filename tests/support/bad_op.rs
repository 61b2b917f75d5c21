//! A misbehaving OpenID Provider, in process, for the negative cases that no real IdP produces.
//!
//! It is strict where a real OP is (client authentication, single-use codes, exact
//! `redirect_uri`, PKCE `S256`/`plain`), and crafts the ID token per the current [`Mode`].
//! `/authorize` answers at once with a redirect back to the client (no login page).
//! Counters let a test check, e.g., that the JWKS was fetched again exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use jsonwebtoken::{Algorithm, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Digest as _;
use url::Url;

use super::http_server::{self, Body, Handler, ServerThread};
use super::util::{b64url, now, random_string};

/// How the next token response (or authorization response) misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A correct ID token (RS256, known `kid`, right `iss`/`aud`/`nonce`, valid times).
    Good,
    /// Signed by another key under the known `kid`.
    BadSignature,
    /// `alg: none`, empty signature.
    AlgNone,
    /// `iss` of another issuer.
    WrongIss,
    /// `iss` equal to the issuer plus a trailing `/` (must match exactly).
    IssTrailingSlash,
    /// `aud` without our `client_id`.
    WrongAud,
    /// `azp` present and not our `client_id`.
    AzpMismatch,
    /// `aud` with two values and no `azp`.
    MultiAudNoAzp,
    /// `aud` with two values and `azp` = our `client_id` (valid).
    MultiAudWithAzp,
    /// `exp` ten minutes in the past.
    Expired,
    /// `nbf` ten minutes in the future.
    NotYetValid,
    /// `nonce` that is not the one sent.
    WrongNonce,
    /// No `nonce` claim.
    MissingNonce,
    /// Signed by a key whose `kid` the JWKS never serves.
    UnknownKid,
    /// Signed by a new key whose `kid` the JWKS starts serving right after the token is issued:
    /// the proxy must refetch the JWKS once and accept the token.
    UnknownKidThenRotate,
    /// The userinfo endpoint answers with another `sub` (use with `user_info_from_id_token: false`).
    UserinfoSubMismatch,
    /// HS256, keyed with the RSA public key's PEM bytes, under the known `kid`.
    HmacWithPublicKey,
    /// Signed by an attacker key that is embedded in the header as `jwk`.
    EmbeddedJwk,
    /// Signed by an attacker key published at a `jku` URL named in the header.
    JkuHeader,
    /// `/authorize` redirects back with `error=access_denied`.
    IdpError,
    /// The authorization response carries an `iss` parameter (RFC 9207) of another issuer.
    WrongIssResponseParam,
}

/// The user the BadOp logs in (there is no login page).
#[derive(Clone, Debug)]
pub struct BadUser {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub preferred_username: String,
    pub groups: Vec<String>,
}

impl Default for BadUser {
    fn default() -> Self {
        Self {
            sub: "dave".into(),
            email: "dave@example.com".into(),
            email_verified: true,
            name: "Dave Tester".into(),
            given_name: "Dave".into(),
            family_name: "Tester".into(),
            preferred_username: "dave".into(),
            groups: vec!["ml-team".into(), "qa".into()],
        }
    }
}

struct Key {
    kid: String,
    private: RsaPrivateKey,
    pkcs1_der: Vec<u8>,
}

impl Key {
    fn generate() -> Arc<Self> {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key");
        let pkcs1_der = private
            .to_pkcs1_der()
            .expect("PKCS#1 DER")
            .as_bytes()
            .to_vec();
        Arc::new(Self {
            kid: random_string(12),
            private,
            pkcs1_der,
        })
    }

    fn public_jwk(&self) -> Value {
        let public = self.private.to_public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url(&public.n().to_bytes_be()),
            "e": b64url(&public.e().to_bytes_be()),
        })
    }

    fn public_pem(&self) -> String {
        self.private
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("public PEM")
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let key = EncodingKey::from_rsa_der(&self.pkcs1_der);
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::RS256)
            .expect("RS256 signature");
        format!("{message}.{signature}")
    }
}

struct PendingCode {
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

struct State {
    issuer: String,
    client_id: String,
    client_secret: String,
    mode: Mode,
    user: BadUser,
    primary: Arc<Key>,
    /// Lazily generated keys: "other", "unknown", "rotated", "attacker".
    extra: HashMap<&'static str, Arc<Key>>,
    served: Vec<Arc<Key>>,
    codes: HashMap<String, PendingCode>,
    access_tokens: HashMap<String, String>,
    jwks_fetches: usize,
    authorize_requests: usize,
    token_requests: usize,
    userinfo_requests: usize,
    end_session_requests: usize,
    authorize_params: Vec<Vec<(String, String)>>,
    token_params: Vec<Vec<(String, String)>>,
    token_errors: Vec<String>,
    token_auth_methods: Vec<String>,
    issued: Vec<String>,
    id_tokens: Vec<String>,
}

impl State {
    fn key(&mut self, name: &'static str) -> Arc<Key> {
        self.extra.entry(name).or_insert_with(Key::generate).clone()
    }
}

pub struct BadOp {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub issuer: String,
    pub port: u16,
    pub client_id: String,
    pub client_secret: String,
    state: Arc<Mutex<State>>,
    _server: ServerThread,
}

impl BadOp {
    /// Start a BadOp in [`Mode::Good`] for one confidential client.
    pub fn start(client_id: &str, client_secret: &str) -> Self {
        let primary = Key::generate();
        let state = Arc::new(Mutex::new(State {
            issuer: String::new(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            mode: Mode::Good,
            user: BadUser::default(),
            served: vec![primary.clone()],
            primary,
            extra: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            jwks_fetches: 0,
            authorize_requests: 0,
            token_requests: 0,
            userinfo_requests: 0,
            end_session_requests: 0,
            authorize_params: Vec::new(),
            token_params: Vec::new(),
            token_errors: Vec::new(),
            token_auth_methods: Vec::new(),
            issued: Vec::new(),
            id_tokens: Vec::new(),
        }));
        let shared = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let state = shared.clone();
            Box::pin(async move { handle(req, state).await })
        });
        let server = ServerThread::start("bad-op", handler);
        let issuer = server.url();
        state.lock().expect("lock").issuer = issuer.clone();
        Self {
            issuer,
            port: server.port(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            state,
            _server: server,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("lock"))
    }

    pub fn set_mode(&self, mode: Mode) {
        self.with(|s| {
            s.mode = mode;
            // Keys the modes need are made now, so that no request waits for key generation.
            match mode {
                Mode::BadSignature => drop(s.key("other")),
                Mode::UnknownKid => drop(s.key("unknown")),
                Mode::UnknownKidThenRotate => drop(s.key("rotated")),
                Mode::EmbeddedJwk | Mode::JkuHeader => drop(s.key("attacker")),
                _ => {}
            }
        });
    }

    pub fn mode(&self) -> Mode {
        self.with(|s| s.mode)
    }

    pub fn set_user(&self, user: BadUser) {
        self.with(|s| s.user = user);
    }

    pub fn user(&self) -> BadUser {
        self.with(|s| s.user.clone())
    }

    pub fn jwks_fetches(&self) -> usize {
        self.with(|s| s.jwks_fetches)
    }

    pub fn authorize_requests(&self) -> usize {
        self.with(|s| s.authorize_requests)
    }

    pub fn token_requests(&self) -> usize {
        self.with(|s| s.token_requests)
    }

    pub fn userinfo_requests(&self) -> usize {
        self.with(|s| s.userinfo_requests)
    }

    pub fn end_session_requests(&self) -> usize {
        self.with(|s| s.end_session_requests)
    }

    /// Query parameters of the most recent `/authorize` request.
    pub fn last_authorize_params(&self) -> Option<Vec<(String, String)>> {
        self.with(|s| s.authorize_params.last().cloned())
    }

    /// One parameter of the most recent `/authorize` request.
    pub fn last_authorize_param(&self, name: &str) -> Option<String> {
        self.last_authorize_params()?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Form parameters of the most recent `/token` request (client secret removed).
    pub fn last_token_params(&self) -> Option<Vec<(String, String)>> {
        self.with(|s| s.token_params.last().cloned())
    }

    /// Why `/token` refused requests (invalid client, PKCE mismatch, ...).
    pub fn token_errors(&self) -> Vec<String> {
        self.with(|s| s.token_errors.clone())
    }

    /// `client_secret_basic` / `client_secret_post`, per token request.
    pub fn token_auth_methods(&self) -> Vec<String> {
        self.with(|s| s.token_auth_methods.clone())
    }

    /// Every ID token and access token issued so far: none may ever appear on a page or in logs.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| s.issued.clone())
    }

    pub fn last_id_token(&self) -> Option<String> {
        self.with(|s| s.id_tokens.last().cloned())
    }

    /// `kid`s the JWKS endpoint serves right now.
    pub fn served_kids(&self) -> Vec<String> {
        self.with(|s| s.served.iter().map(|k| k.kid.clone()).collect())
    }

    pub fn primary_kid(&self) -> String {
        self.with(|s| s.primary.kid.clone())
    }

    /// The JWKS as served (without counting a fetch).
    pub fn jwks(&self) -> Value {
        self.with(
            |s| json!({ "keys": s.served.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() }),
        )
    }
}

async fn handle(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let auth_header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (method, path.as_str()) {
        (Method::GET, "/.well-known/openid-configuration") => {
            let issuer = state.lock().expect("lock").issuer.clone();
            http_server::json_response(200, &discovery(&issuer))
        }
        (Method::GET, "/jwks") => {
            let mut s = state.lock().expect("lock");
            s.jwks_fetches += 1;
            let keys: Vec<Value> = s.served.iter().map(|k| k.public_jwk()).collect();
            http_server::json_response(200, &json!({ "keys": keys }))
        }
        (Method::GET, "/attacker-jwks") => {
            let mut s = state.lock().expect("lock");
            let key = s.key("attacker");
            http_server::json_response(200, &json!({ "keys": [key.public_jwk()] }))
        }
        (Method::GET, "/authorize") => authorize(&query, &mut state.lock().expect("lock")),
        (Method::POST, "/token") => {
            let body = http_server::read_body(req.into_body()).await;
            token(
                auth_header.as_deref(),
                &body,
                &mut state.lock().expect("lock"),
            )
        }
        (Method::GET | Method::POST, "/userinfo") => {
            userinfo(auth_header.as_deref(), &mut state.lock().expect("lock"))
        }
        (Method::GET | Method::POST, "/logout") => {
            state.lock().expect("lock").end_session_requests += 1;
            http_server::response(200, "text/html", "<p>Signed out of the BadOp.</p>")
        }
        _ => http_server::response(404, "text/plain", "not found"),
    }
}

fn discovery(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "scopes_supported": ["openid", "profile", "email", "groups"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email",
            "email_verified", "name", "given_name", "family_name", "preferred_username", "groups"],
        "authorization_response_iss_parameter_supported": true,
    })
}

fn parse_form(text: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn authorize(query: &str, s: &mut State) -> Response<Body> {
    s.authorize_requests += 1;
    let params = parse_form(query);
    s.authorize_params.push(params.clone());
    if param(&params, "client_id") != Some(s.client_id.as_str()) {
        return http_server::response(400, "text/plain", "BadOp: unknown client_id");
    }
    let Some(redirect_uri) = param(&params, "redirect_uri") else {
        return http_server::response(400, "text/plain", "BadOp: missing redirect_uri");
    };
    let Ok(mut target) = Url::parse(redirect_uri) else {
        return http_server::response(400, "text/plain", "BadOp: bad redirect_uri");
    };
    let state_param = param(&params, "state").map(str::to_owned);
    let response_iss = if s.mode == Mode::WrongIssResponseParam {
        "https://evil.example.com".to_owned()
    } else {
        s.issuer.clone()
    };
    {
        let mut q = target.query_pairs_mut();
        if s.mode == Mode::IdpError {
            q.append_pair("error", "access_denied");
            q.append_pair("error_description", "The user denied the request");
        } else if param(&params, "response_type") != Some("code") {
            q.append_pair("error", "unsupported_response_type");
        } else {
            let code = random_string(32);
            s.codes.insert(
                code.clone(),
                PendingCode {
                    redirect_uri: redirect_uri.to_owned(),
                    nonce: param(&params, "nonce").map(str::to_owned),
                    code_challenge: param(&params, "code_challenge").map(str::to_owned),
                    code_challenge_method: param(&params, "code_challenge_method")
                        .map(str::to_owned),
                },
            );
            q.append_pair("code", &code);
        }
        if let Some(st) = &state_param {
            q.append_pair("state", st);
        }
        q.append_pair("iss", &response_iss);
    }
    http_server::redirect(target.as_str())
}

fn oauth_error(s: &mut State, status: u16, error: &str, why: String) -> Response<Body> {
    s.token_errors.push(why);
    http_server::json_response(status, &json!({ "error": error }))
}

/// `client_secret_basic` (RFC 6749 2.3.1: form-urlencoded id and secret) or `client_secret_post`.
fn client_credentials(
    auth_header: Option<&str>,
    params: &[(String, String)],
) -> Option<(String, String, &'static str)> {
    if let Some(basic) = auth_header.and_then(|h| h.strip_prefix("Basic ")) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        let unescape = |v: &str| {
            url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Some((unescape(id), unescape(secret), "client_secret_basic"));
    }
    let id = param(params, "client_id")?;
    let secret = param(params, "client_secret")?;
    Some((id.to_owned(), secret.to_owned(), "client_secret_post"))
}

fn check_pkce(pending: &PendingCode, verifier: Option<&str>) -> Result<(), String> {
    match (&pending.code_challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err("code_verifier sent but no code_challenge was".into()),
        (Some(_), None) => Err("code_challenge was sent but no code_verifier".into()),
        (Some(challenge), Some(verifier)) => {
            let method = pending.code_challenge_method.as_deref().unwrap_or("plain");
            let expected = match method {
                "S256" => b64url(&sha2::Sha256::digest(verifier.as_bytes())),
                "plain" => verifier.to_owned(),
                other => return Err(format!("unsupported code_challenge_method {other}")),
            };
            if &expected == challenge {
                Ok(())
            } else {
                Err(format!(
                    "PKCE {method} verifier does not match the challenge"
                ))
            }
        }
    }
}

fn token(auth_header: Option<&str>, body: &[u8], s: &mut State) -> Response<Body> {
    s.token_requests += 1;
    let params = parse_form(&String::from_utf8_lossy(body));
    s.token_params.push(
        params
            .iter()
            .filter(|(n, _)| n != "client_secret")
            .cloned()
            .collect(),
    );
    let Some((id, secret, method)) = client_credentials(auth_header, &params) else {
        return oauth_error(s, 401, "invalid_client", "no client authentication".into());
    };
    if id != s.client_id || secret != s.client_secret {
        return oauth_error(
            s,
            401,
            "invalid_client",
            format!("wrong client credentials for {id}"),
        );
    }
    s.token_auth_methods.push(method.to_owned());
    if param(&params, "grant_type") != Some("authorization_code") {
        return oauth_error(s, 400, "unsupported_grant_type", "grant_type".into());
    }
    let Some(pending) = param(&params, "code").and_then(|c| s.codes.remove(c)) else {
        return oauth_error(
            s,
            400,
            "invalid_grant",
            "unknown or already used code".into(),
        );
    };
    if param(&params, "redirect_uri") != Some(pending.redirect_uri.as_str()) {
        return oauth_error(s, 400, "invalid_grant", "redirect_uri differs".into());
    }
    if let Err(why) = check_pkce(&pending, param(&params, "code_verifier")) {
        return oauth_error(s, 400, "invalid_grant", why);
    }

    let id_token = id_token(s, pending.nonce.as_deref());
    let access_token = random_string(40);
    let userinfo_sub = if s.mode == Mode::UserinfoSubMismatch {
        "mallory".to_owned()
    } else {
        s.user.sub.clone()
    };
    s.access_tokens.insert(access_token.clone(), userinfo_sub);
    s.issued.push(id_token.clone());
    s.issued.push(access_token.clone());
    s.id_tokens.push(id_token.clone());
    if s.mode == Mode::UnknownKidThenRotate {
        let rotated = s.key("rotated");
        if !s.served.iter().any(|k| k.kid == rotated.kid) {
            s.served.push(rotated);
        }
    }
    http_server::json_response(
        200,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid profile email",
            "id_token": id_token,
        }),
    )
}

fn user_claims(u: &BadUser) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("sub".into(), json!(u.sub));
    m.insert("email".into(), json!(u.email));
    m.insert("email_verified".into(), json!(u.email_verified));
    m.insert("name".into(), json!(u.name));
    m.insert("given_name".into(), json!(u.given_name));
    m.insert("family_name".into(), json!(u.family_name));
    m.insert("preferred_username".into(), json!(u.preferred_username));
    m.insert("groups".into(), json!(u.groups));
    m
}

fn id_token(s: &mut State, nonce: Option<&str>) -> String {
    let t = now();
    let mut claims = user_claims(&s.user);
    claims.insert("iss".into(), json!(s.issuer));
    claims.insert("aud".into(), json!(s.client_id));
    claims.insert("iat".into(), json!(t));
    claims.insert("auth_time".into(), json!(t));
    claims.insert("exp".into(), json!(t + 600));
    if let Some(n) = nonce {
        claims.insert("nonce".into(), json!(n));
    }
    let mut header = json!({ "alg": "RS256", "typ": "JWT", "kid": s.primary.kid });
    let mut signer = s.primary.clone();

    match s.mode {
        Mode::Good | Mode::UserinfoSubMismatch | Mode::IdpError | Mode::WrongIssResponseParam => {}
        Mode::BadSignature => signer = s.key("other"),
        Mode::AlgNone => {
            header = json!({ "alg": "none", "typ": "JWT", "kid": s.primary.kid });
            return format!(
                "{}.{}.",
                b64url(header.to_string().as_bytes()),
                b64url(Value::Object(claims).to_string().as_bytes())
            );
        }
        Mode::WrongIss => {
            claims.insert("iss".into(), json!("https://evil.example.com"));
        }
        Mode::IssTrailingSlash => {
            claims.insert("iss".into(), json!(format!("{}/", s.issuer)));
        }
        Mode::WrongAud => {
            claims.insert("aud".into(), json!("another-client"));
        }
        Mode::AzpMismatch => {
            claims.insert("azp".into(), json!("another-client"));
        }
        Mode::MultiAudNoAzp => {
            claims.insert("aud".into(), json!([s.client_id, "another-audience"]));
        }
        Mode::MultiAudWithAzp => {
            claims.insert("aud".into(), json!([s.client_id, "another-audience"]));
            claims.insert("azp".into(), json!(s.client_id));
        }
        Mode::Expired => {
            claims.insert("iat".into(), json!(t - 1200));
            claims.insert("auth_time".into(), json!(t - 1200));
            claims.insert("exp".into(), json!(t - 600));
        }
        Mode::NotYetValid => {
            claims.insert("nbf".into(), json!(t + 600));
        }
        Mode::WrongNonce => {
            claims.insert("nonce".into(), json!("not-the-nonce"));
        }
        Mode::MissingNonce => {
            claims.remove("nonce");
        }
        Mode::UnknownKid | Mode::UnknownKidThenRotate => {
            let name = if s.mode == Mode::UnknownKid {
                "unknown"
            } else {
                "rotated"
            };
            signer = s.key(name);
            header["kid"] = json!(signer.kid);
        }
        Mode::HmacWithPublicKey => {
            header["alg"] = json!("HS256");
            let message = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(Value::Object(claims).to_string().as_bytes())
            );
            let key = EncodingKey::from_secret(s.primary.public_pem().as_bytes());
            let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
                .expect("HS256 signature");
            return format!("{message}.{sig}");
        }
        Mode::EmbeddedJwk => {
            signer = s.key("attacker");
            header["kid"] = json!(signer.kid);
            header["jwk"] = signer.public_jwk();
        }
        Mode::JkuHeader => {
            signer = s.key("attacker");
            header["kid"] = json!(signer.kid);
            header["jku"] = json!(format!("{}/attacker-jwks", s.issuer));
        }
    }
    signer.sign(&header, &Value::Object(claims))
}

fn userinfo(auth_header: Option<&str>, s: &mut State) -> Response<Body> {
    s.userinfo_requests += 1;
    let token = auth_header
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    let Some(sub) = s.access_tokens.get(token.trim()).cloned() else {
        return http_server::json_response(401, &json!({ "error": "invalid_token" }));
    };
    let mut claims = user_claims(&s.user);
    claims.insert("sub".into(), json!(sub));
    http_server::json_response(200, &Value::Object(claims))
}
