//! A stand-in for the open-source ClearML server, for the ClearML bridge tests (issue 5):
//!
//! - the **API server** (`apiserver`, port 8008 in a real deployment) at [`ClearmlApi::url`];
//! - the **webserver's routing** at [`ClearmlApi::web_url`], what ClearML's nginx does in front
//!   of the web app: `/api/*` goes to the API server with `/api` stripped, everything else goes
//!   to the web app, here whatever [`ClearmlApi::route_upstream`] found as the proxy's upstream
//!   (the echo upstream, so `Stack::echo` keeps seeing the browser traffic).
//!
//! It follows allegroai/clearml-server @2976ce69 (API 2.31, see
//! `/work/shared/reference/clearml-open-source-auth.md`) wherever the bridge depends on it:
//!
//! - URLs `/[vX.Y/]service.action`, any method, a JSON body merged with the query string. Every
//!   answer is the envelope `{"meta":{id,trx,endpoint{name,requested_version,actual_version},
//!   result_code,result_subcode,result_msg,error_stack,error_data},"data":{...}}` with the HTTP
//!   status equal to `result_code`; codes and subcodes are the server's (`apierrors/errors.conf`:
//!   401/20 no credentials, 401/21 malformed, 401/22 invalid credentials, 401/30 invalid or
//!   revoked token, 403/20 role not allowed, 400/5 both impersonation headers, 400/6
//!   impersonation error, 400/12 validation error, 400/301 invalid user id, 400/801 duplicate
//!   unique value, 404 unknown endpoint).
//! - `Authorization: Basic base64(key:secret)` against the credential table, or `Bearer <jwt>`:
//!   HS256 with a `token_secret` generated per run, `exp` checked without leeway (expired when
//!   `exp <= now`, as PyJWT does), revoked `session_id`s refused. Without an `Authorization`
//!   header the session cookie (`clearml_token_basic` unless configured) is used as the Bearer
//!   token; the header always wins over the cookie.
//! - Impersonation: `X-Clearml-Impersonate-As` / `X-Trains-Impersonate-As` run the call as that
//!   user with the user's own role; `X-Clearml-Act-As` / `X-Trains-Act-As` keep the caller's
//!   role. Allowed for `system`, `root` and `admin` callers only (others: 400/6, exactly as the
//!   real server — not 403); non-root callers only reach users of their own company. Issue 5's
//!   letter says "only the system key": `ApiOptions::system_only_impersonation` narrows it to
//!   `system` callers, so a test can prove the proxy impersonates with its system key alone.
//! - Tokens carry the server's claims: `auth_type`, `identity{user,company,role,user_name,
//!   company_name}`, `iat`, `exp` (`expiration_sec`, default 30 days, at most one year; none for
//!   a `system` user that asks for none), `session_id`, `env`, `api_version`, `server_version`,
//!   `server_build`, `feature_set`. The role in a token is the user's role in the database when
//!   the token is issued. `auth.login` also sets the session cookie (`HttpOnly`, `SameSite=Lax`,
//!   `Path=/`, `Max-Age=99999999999`, never `Secure`: the server's defaults); `auth.logout` and
//!   `login.logout` revoke the caller's token and clear the cookie (`Max-Age=0`).
//!
//! One deliberate difference: `auth.create_user` refuses the roles `root` and `system` (400/12).
//! The real server would accept them from a system caller; the proxy must never ask for them.
//!
//! For the tests it exposes the user table, every call (caller, impersonation target, body,
//! result), revoked sessions, token verification, failure switches ([`Failure`]: 500 on every
//! call or on one endpoint, or down = not listening) and a cap on token lifetimes
//! ([`ClearmlApi::cap_expiration`], a server that issues shorter tokens than asked) so that
//! re-issue near expiry can be tested without waiting.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use regex::Regex;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

use super::echo::EchoRequest;
use super::http_server::{self, Body, Handler, ServerThread};
use super::util::{now, random_string};

/// ClearML's default company (`apiserver.default_company`).
pub const DEFAULT_COMPANY: &str = "d1bd92a3b039400cbafc60a7a5b1e52b";
/// The default company's name (`_ensure_company(..., "clearml")`).
pub const DEFAULT_COMPANY_NAME: &str = "clearml";
/// `apiserver.auth.session_auth_cookie_name` by default (the Helm chart uses `clearml-token-k8s`).
pub const DEFAULT_COOKIE_NAME: &str = "clearml_token_basic";
/// The highest API version of clearml-server 2.0 (used when a URL names none).
pub const MAX_VERSION: &str = "2.31";
/// `apiserver.auth.default_expiration_sec` (30 days).
pub const DEFAULT_EXPIRATION_SEC: i64 = 2_592_000;
/// `apiserver.auth.max_expiration_sec` (one year).
pub const MAX_EXPIRATION_SEC: i64 = 31_536_000;
/// The id ClearML gives the user of `secure.credentials.sso_proxy` (`__<name>__`).
pub const SYSTEM_USER_ID: &str = "__sso_proxy__";
/// Every role of the server (`database/model/auth.py`).
pub const ROLES: &[&str] = &[
    "system",
    "root",
    "admin",
    "superuser",
    "user",
    "annotator",
    "guest",
];
/// Roles that are never granted to a person by the proxy.
pub const SYSTEM_ROLES: &[&str] = &["system", "root"];
/// The guest of fixed-users mode, as `login.supported_modes` shows it when guest mode is on.
pub const GUEST: (&str, &str, &str) = ("Guest", "guest", "guest");

/// What the stand-in is configured with.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// `apiserver.auth.session_auth_cookie_name`.
    pub cookie_name: String,
    /// The company of the proxy's system credential (and of users created by tests by default).
    pub system_company: String,
    /// `apiserver.auth.fixed_users.enabled`: `login.supported_modes` shows `basic.enabled`.
    pub fixed_users: bool,
    /// `services.auth.fixed_users.guest.enabled` (only with `fixed_users`).
    pub guest: bool,
    /// Only `system` callers may impersonate (the real server also lets `root` and `admin`).
    pub system_only_impersonation: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            system_company: DEFAULT_COMPANY.to_owned(),
            fixed_users: true,
            guest: true,
            system_only_impersonation: false,
        }
    }
}

/// A user in the auth database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub company: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub avatar: Option<String>,
    /// Made from `secure.credentials` (the proxy's system user), not by `auth.create_user`.
    pub internal: bool,
}

/// The identity a call runs as, or a token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub company: String,
    pub role: String,
    pub user_name: String,
    pub company_name: String,
}

impl Identity {
    fn to_json(&self) -> Value {
        // Dictable.to_dict: falsy properties are left out.
        let mut m = Map::new();
        for (k, v) in [
            ("user", &self.user),
            ("company", &self.company),
            ("role", &self.role),
            ("user_name", &self.user_name),
            ("company_name", &self.company_name),
        ] {
            if !v.is_empty() {
                m.insert(k.to_owned(), json!(v));
            }
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let identity = Self {
            user: s("user"),
            company: s("company"),
            role: s("role"),
            user_name: s("user_name"),
            company_name: s("company_name"),
        };
        (!identity.user.is_empty()).then_some(identity)
    }
}

/// How a call authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    None,
    /// `Authorization: Basic ...`
    Basic,
    /// `Authorization: Bearer ...`
    Bearer,
    /// No `Authorization` header; the session cookie, used as a Bearer token.
    Cookie,
    /// An `Authorization` header of another type.
    Other,
}

/// One call the API server answered.
#[derive(Clone, Debug)]
pub struct Call {
    /// `service.action`.
    pub endpoint: String,
    /// The version in the URL, if any (`"999.0"` for `/v999.0/...`).
    pub requested_version: Option<String>,
    /// Reached through the webserver's `/api` route rather than the API URL.
    pub via_web: bool,
    pub method: String,
    /// Header names are lower-case.
    pub headers: Vec<(String, String)>,
    pub auth: AuthKind,
    /// The authenticated caller's user id (before impersonation), when authentication worked.
    pub caller: Option<String>,
    pub caller_role: Option<String>,
    /// The token's `session_id` when the caller used a token (header or cookie).
    pub session_id: Option<String>,
    /// `X-Clearml-Impersonate-As` (or `X-Trains-`), as sent.
    pub impersonate_as: Option<String>,
    /// `X-Clearml-Act-As` (or `X-Trains-`), as sent.
    pub act_as: Option<String>,
    /// The identity the call ran as (after impersonation).
    pub identity: Option<Identity>,
    /// The JSON body merged with the query string.
    pub body: Value,
    pub result_code: u16,
    pub result_subcode: u32,
    pub result_msg: String,
    pub data: Value,
}

impl Call {
    pub fn ok(&self) -> bool {
        self.result_code == 200
    }

    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A failure switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Normal service.
    None,
    /// Every call answers 500 (`server_error.general_error`) and does nothing.
    ServerError,
    /// Calls to this endpoint (`service.action`) answer 500 and do nothing.
    ServerErrorOn(String),
    /// The API server stops listening (connection refused); the webserver's `/api` route
    /// answers 502 like nginx.
    Down,
    /// Something in front of the API server (a load balancer, an ingress) answers every call
    /// with this status and an HTML page, not a ClearML envelope; nothing reaches the server.
    Html(u16),
}

/// A verified token.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub identity: Identity,
    pub iat: i64,
    pub exp: Option<i64>,
    pub session_id: String,
    pub claims: Value,
}

/// How a test client authenticates a direct call ([`ClearmlApi::call`]).
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
    /// The token as the session cookie, no `Authorization` header.
    Cookie(&'a str),
}

/// A direct call's answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub json: Value,
    pub set_cookies: Vec<String>,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.json["data"]
    }

    pub fn result_code(&self) -> u64 {
        self.json["meta"]["result_code"]
            .as_u64()
            .unwrap_or_default()
    }

    pub fn result_subcode(&self) -> u64 {
        self.json["meta"]["result_subcode"]
            .as_u64()
            .unwrap_or_default()
    }

    /// `data.token`; panics (with the answer) when there is none.
    pub fn token(&self) -> String {
        self.data()["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {} {}", self.status, self.json))
            .to_owned()
    }

    /// The `Set-Cookie` value for cookie `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.split_once('=').is_some_and(|(n, _)| n.trim() == name))
            .map(String::as_str)
    }
}

/// `Basic base64(key:secret)`.
pub fn basic_auth(key: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
    )
}

/// The (unverified) claims of a token.
pub fn decode_token(token: &str) -> Value {
    super::util::jwt_payload(token)
}

/// The value of cookie `name` in a `Set-Cookie` header value (`name=value; ...`).
pub fn set_cookie_value<'a>(set_cookie: &'a str, name: &str) -> Option<&'a str> {
    let first = set_cookie.split(';').next()?;
    let (n, v) = first.split_once('=')?;
    (n.trim() == name).then_some(v.trim())
}

/// The attributes of a `Set-Cookie` header value, names lower-cased: `[("httponly", ""),
/// ("samesite", "Lax"), ...]`.
pub fn set_cookie_attributes(set_cookie: &str) -> Vec<(String, String)> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| {
            let a = a.trim();
            let (n, v) = a.split_once('=').unwrap_or((a, ""));
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect()
}

struct State {
    opts: ApiOptions,
    token_secret: Vec<u8>,
    /// id → name.
    companies: HashMap<String, String>,
    users: Vec<User>,
    /// access key → (secret, user id).
    credentials: HashMap<String, (String, String)>,
    revoked: Vec<String>,
    calls: Vec<Call>,
    web_requests: Vec<EchoRequest>,
    issued: Vec<String>,
    failure: Failure,
    expiration_cap: Option<i64>,
    last_impersonation: Option<String>,
    /// Where the webserver sends non-`/api` requests.
    fallback: Option<String>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct ClearmlApi {
    /// The API server: `http://127.0.0.1:<port>` (what `clearml.api_url` points at).
    pub url: String,
    pub port: u16,
    /// The webserver: `/api/*` → the API server, the rest → the web app.
    pub web_url: String,
    /// The proxy's system credential (`secure.credentials.sso_proxy`, role `system`).
    pub system_key: String,
    pub system_secret: String,
    pub cookie_name: String,
    addr: SocketAddr,
    state: Shared,
    api_server: Mutex<Option<Listener>>,
    _web_server: ServerThread,
}

impl ClearmlApi {
    /// Start with the defaults: cookie `clearml_token_basic`, the default company, fixed-users
    /// mode with guest mode on, and a system credential for the proxy.
    pub fn start() -> Self {
        Self::start_with(ApiOptions::default())
    }

    pub fn start_with(opts: ApiOptions) -> Self {
        let system_key = random_string(30).to_ascii_uppercase();
        let system_secret = random_string(50);
        let mut companies = HashMap::new();
        companies.insert(DEFAULT_COMPANY.to_owned(), DEFAULT_COMPANY_NAME.to_owned());
        companies
            .entry(opts.system_company.clone())
            .or_insert_with(|| "sso".to_owned());
        let mut credentials = HashMap::new();
        credentials.insert(
            system_key.clone(),
            (system_secret.clone(), SYSTEM_USER_ID.to_owned()),
        );
        let system_user = User {
            id: SYSTEM_USER_ID.to_owned(),
            name: "sso_proxy".to_owned(),
            email: "sso_proxy@example.com".to_owned(),
            role: "system".to_owned(),
            company: opts.system_company.clone(),
            given_name: None,
            family_name: None,
            avatar: None,
            internal: true,
        };
        let cookie_name = opts.cookie_name.clone();
        let state: Shared = Arc::new(Mutex::new(State {
            opts,
            token_secret: random_string(54).into_bytes(),
            companies,
            users: vec![system_user],
            credentials,
            revoked: Vec::new(),
            calls: Vec::new(),
            web_requests: Vec::new(),
            issued: Vec::new(),
            failure: Failure::None,
            expiration_cap: None,
            last_impersonation: None,
            fallback: None,
        }));

        let (api_server, addr) = Listener::bind(
            "127.0.0.1:0".parse().expect("address"),
            api_handler(state.clone()),
        )
        .expect("bind the ClearML API stand-in");
        let web_server = ServerThread::start("clearml-web", web_handler(state.clone()));
        Self {
            url: format!("http://{addr}"),
            port: addr.port(),
            web_url: web_server.url(),
            system_key,
            system_secret,
            cookie_name,
            addr,
            state,
            api_server: Mutex::new(Some(api_server)),
            _web_server: web_server,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    // ---- wiring into a proxy config ----

    /// The `clearml` block of the proxy config for this stand-in: `enabled`, `api_url`,
    /// `api_key`, `api_secret` (and `cookie_name` when it is not the default).
    pub fn bridge_config(&self) -> Value {
        let mut c = json!({
            "enabled": true,
            "api_url": self.url,
            "api_key": self.system_key,
            "api_secret": self.system_secret,
        });
        if self.cookie_name != DEFAULT_COOKIE_NAME {
            c["cookie_name"] = json!(self.cookie_name);
        }
        c
    }

    /// Put the webserver in front of the config's `upstream`: the webserver sends everything but
    /// `/api/*` to the old upstream, and the config's `upstream` becomes the webserver.
    pub fn route_upstream(&self, config: &mut Value) {
        if let Some(upstream) = config["upstream"].as_str() {
            let upstream = upstream.trim_end_matches('/').to_owned();
            self.with(|s| s.fallback = Some(upstream));
        }
        config["upstream"] = json!(self.web_url);
    }

    // ---- set-up ----

    pub fn add_company(&self, id: &str, name: &str) {
        self.with(|s| s.companies.insert(id.to_owned(), name.to_owned()));
    }

    /// Add a user directly to the database (as ClearML's own UI or fixed users would); returns
    /// its id. `company`: the system credential's company when `None`.
    pub fn add_user(&self, name: &str, email: &str, role: &str, company: Option<&str>) -> String {
        self.with(|s| {
            let id = new_id();
            let company = company.unwrap_or(&s.opts.system_company).to_owned();
            s.users.push(User {
                id: id.clone(),
                name: name.to_owned(),
                email: email.to_owned(),
                role: role.to_owned(),
                company,
                given_name: None,
                family_name: None,
                avatar: None,
                internal: false,
            });
            id
        })
    }

    /// Give `user_id` an API credential (what `auth.create_credentials` makes); returns
    /// `(access_key, secret_key)`.
    pub fn add_credentials(&self, user_id: &str) -> (String, String) {
        let key = random_string(20).to_ascii_uppercase();
        let secret = random_string(50);
        self.with(|s| {
            s.credentials
                .insert(key.clone(), (secret.clone(), user_id.to_owned()))
        });
        (key, secret)
    }

    /// Change a user's role in the database directly.
    pub fn set_role(&self, user_id: &str, role: &str) {
        self.with(|s| {
            if let Some(u) = s.users.iter_mut().find(|u| u.id == user_id) {
                u.role = role.to_owned();
            }
        });
    }

    /// A token for `user_id` as `auth.get_token_for_user` would issue it.
    pub fn mint_token(&self, user_id: &str, expiration_sec: Option<i64>) -> String {
        self.with(|s| s.token_for(user_id, None, expiration_sec))
            .unwrap_or_else(|o| panic!("cannot mint a token for {user_id}: {}", o.msg))
    }

    /// A token with a valid signature for an arbitrary identity and `exp` (even in the past).
    pub fn forge_token(&self, identity: &Identity, exp: Option<i64>) -> String {
        self.with(|s| s.encode_token(identity, exp.map(|e| e - now())))
    }

    // ---- switches ----

    pub fn set_failure(&self, failure: Failure) {
        let down = failure == Failure::Down;
        self.with(|s| s.failure = failure);
        let mut server = self.api_server.lock().unwrap_or_else(|e| e.into_inner());
        if down {
            // Dropping the listener closes the port and every open connection.
            drop(server.take());
        } else if server.is_none() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match Listener::bind(self.addr, api_handler(self.state.clone())) {
                    Ok((listener, _)) => {
                        *server = Some(listener);
                        break;
                    }
                    Err(e) => {
                        assert!(
                            Instant::now() < deadline,
                            "cannot listen on {} again: {e}",
                            self.addr
                        );
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }

    /// Issue tokens that live at most `seconds` (whatever `expiration_sec` asks), or no cap.
    pub fn cap_expiration(&self, seconds: Option<i64>) {
        self.with(|s| s.expiration_cap = seconds);
    }

    // ---- inspection ----

    /// Every user, the proxy's system user included.
    pub fn users(&self) -> Vec<User> {
        self.with(|s| s.users.clone())
    }

    /// Users that are not internal (everyone but the system user).
    pub fn people(&self) -> Vec<User> {
        self.with(|s| s.users.iter().filter(|u| !u.internal).cloned().collect())
    }

    pub fn user(&self, id: &str) -> Option<User> {
        self.with(|s| s.users.iter().find(|u| u.id == id).cloned())
    }

    pub fn user_by_email(&self, email: &str) -> Option<User> {
        self.with(|s| s.users.iter().find(|u| u.email == email).cloned())
    }

    /// Every call answered so far (not those refused while down).
    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    /// Calls to `endpoint` (`service.action`).
    pub fn calls_to(&self, endpoint: &str) -> Vec<Call> {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| c.endpoint == endpoint)
                .cloned()
                .collect()
        })
    }

    /// How many calls to `endpoint` were answered (successful or not).
    pub fn count(&self, endpoint: &str) -> usize {
        self.with(|s| s.calls.iter().filter(|c| c.endpoint == endpoint).count())
    }

    /// How many calls to `endpoint` succeeded.
    pub fn ok_count(&self, endpoint: &str) -> usize {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| c.endpoint == endpoint && c.ok())
                .count()
        })
    }

    /// `auth.login` calls that impersonated someone (`X-Clearml-Impersonate-As`).
    pub fn impersonated_logins(&self) -> Vec<Call> {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| c.endpoint == "auth.login" && c.impersonate_as.is_some())
                .cloned()
                .collect()
        })
    }

    /// The target of the last successful impersonation (any endpoint).
    pub fn last_impersonation(&self) -> Option<String> {
        self.with(|s| s.last_impersonation.clone())
    }

    /// Revoked token sessions (`session_id`s), in order.
    pub fn revoked_sessions(&self) -> Vec<String> {
        self.with(|s| s.revoked.clone())
    }

    /// Every token issued (`auth.login`, `auth.get_token_for_user`, `mint_token`).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| s.issued.clone())
    }

    /// Verify a token as the server would (signature, `exp`, revocation, identity).
    pub fn verify_token(&self, token: &str) -> Result<TokenInfo, String> {
        self.with(|s| s.verify(token)).map_err(|o| o.msg)
    }

    /// Every request the webserver received (`/api/*` and the rest), in order.
    pub fn web_requests(&self) -> Vec<EchoRequest> {
        self.with(|s| s.web_requests.clone())
    }

    /// The last request the webserver received for `path` (the full path, `/api/...` included).
    pub fn web_last_to(&self, path: &str) -> Option<EchoRequest> {
        self.with(|s| {
            s.web_requests
                .iter()
                .rev()
                .find(|r| r.path == path)
                .cloned()
        })
    }

    // ---- a client ----

    /// `POST <url><path>` with a JSON body, as an SDK would call the API server directly.
    pub async fn call(&self, path: &str, auth: Auth<'_>, body: Value) -> Reply {
        self.call_with(&self.url, path, auth, body, &[]).await
    }

    /// `POST <base><path>` with a JSON body and extra headers.
    pub async fn call_with(
        &self,
        base: &str,
        path: &str,
        auth: Auth<'_>,
        body: Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let mut req = client
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string());
        match auth {
            Auth::None => {}
            Auth::Basic(k, s) => req = req.header("authorization", basic_auth(k, s)),
            Auth::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
            Auth::Cookie(t) => req = req.header("cookie", format!("{}={t}", self.cookie_name)),
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
        let status = resp.status().as_u16();
        let set_cookies = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            json,
            set_cookies,
        }
    }

    /// `auth.login` with a credential (as the SDK does); returns the token.
    pub async fn login(&self, key: &str, secret: &str) -> String {
        let reply = self
            .call("/auth.login", Auth::Basic(key, secret), json!({}))
            .await;
        assert_eq!(reply.status, 200, "auth.login: {}", reply.json);
        reply.token()
    }
}

impl Drop for ClearmlApi {
    fn drop(&mut self) {
        let server = self
            .api_server
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(server);
    }
}

// ---------------------------------------------------------------------------------------------
// The API server

/// A request, read whole.
struct ApiRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    via_web: bool,
}

impl ApiRequest {
    async fn read(req: Request<Incoming>, via_web: bool) -> Self {
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().map(str::to_owned);
        let body = http_server::read_body(req.into_body()).await;
        Self {
            method,
            path,
            query,
            headers,
            body,
            via_web,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first header of `names` that is present (the server's priority order).
    fn header_any(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.header(n))
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }
}

/// The result of a call: what goes into `meta` and `data`, and the cookie to set or clear.
struct Outcome {
    code: u16,
    subcode: u32,
    msg: String,
    data: Value,
    error_data: Value,
    /// `Some(Some(token))`: set the session cookie; `Some(None)`: clear it.
    cookie: Option<Option<String>>,
}

impl Outcome {
    fn ok(data: Value) -> Self {
        Self {
            code: 200,
            subcode: 0,
            msg: "OK".to_owned(),
            data,
            error_data: json!({}),
            cookie: None,
        }
    }

    fn err(code: u16, subcode: u32, msg: impl Into<String>) -> Self {
        Self {
            code,
            subcode,
            msg: msg.into(),
            data: json!({}),
            error_data: json!({}),
            cookie: None,
        }
    }

    fn with_error_data(mut self, error_data: Value) -> Self {
        self.error_data = error_data;
        self
    }

    fn set_cookie(mut self, token: String) -> Self {
        self.cookie = Some(Some(token));
        self
    }

    fn clear_cookie(mut self) -> Self {
        self.cookie = Some(None);
        self
    }
}

fn server_error() -> Outcome {
    Outcome::err(500, 0, "General server error")
}

fn validation_error(msg: impl std::fmt::Display) -> Outcome {
    Outcome::err(400, 12, format!("Validation error ({msg})"))
}

/// Whether an endpoint needs authentication (`authorize` in the schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Authorize {
    /// `authorize: true` (the default): no valid credentials → 401.
    Required,
    /// `authorize: null`: credentials are used when valid, ignored otherwise.
    Optional,
    /// `authorize: false`: never looked at.
    Never,
}

struct Spec {
    authorize: Authorize,
    /// `None`: every role (`allow_roles: ["*"]`).
    roles: Option<&'static [&'static str]>,
    min_version: &'static str,
}

impl Spec {
    fn allows(&self, role: &str) -> bool {
        self.roles.is_none_or(|roles| roles.contains(&role))
    }
}

const SYSTEM_ROOT_ADMIN: &[&str] = &["system", "root", "admin"];
const SYSTEM_ROOT: &[&str] = &["system", "root"];

fn spec(endpoint: &str) -> Option<Spec> {
    let (authorize, roles, min_version) = match endpoint {
        "auth.login" => (Authorize::Required, None, "1.0"),
        "auth.logout" => (Authorize::Required, None, "2.2"),
        "auth.get_token_for_user" => (Authorize::Required, Some(SYSTEM_ROOT), "1.0"),
        "auth.validate_token" => (Authorize::Required, Some(SYSTEM_ROOT), "1.0"),
        "auth.create_user" => (Authorize::Required, Some(SYSTEM_ROOT_ADMIN), "1.0"),
        "auth.edit_user" => (Authorize::Required, Some(SYSTEM_ROOT_ADMIN), "1.0"),
        "auth.fixed_users_mode" => (Authorize::Never, None, "1.0"),
        "login.supported_modes" => (Authorize::Optional, None, "1.0"),
        "login.logout" => (Authorize::Optional, None, "2.13"),
        "users.get_current_user" => (Authorize::Required, None, "1.0"),
        "debug.ping" => (Authorize::Never, None, "1.0"),
        "projects.get_all" | "projects.get_all_ex" | "tasks.get_all" | "tasks.get_all_ex" => {
            (Authorize::Required, None, "1.0")
        }
        _ => return None,
    };
    Some(Spec {
        authorize,
        roles,
        min_version,
    })
}

/// `PartialVersion` ordering: `"2.31"` → (2, 31).
fn version(v: &str) -> (u64, u64) {
    let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
    (
        major.parse().unwrap_or_default(),
        minor.parse().unwrap_or_default(),
    )
}

/// `ServiceRepo._endpoint_exp` (version not required): `(version, service.action)`.
fn parse_path(path: &str) -> Option<(Option<String>, String)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"^/?(v(?P<version>\d+\.?\d+)/)?(?P<name>[a-zA-Z_]\w+\.[a-zA-Z_]\w+)/?$")
            .expect("regex")
    });
    let caps = re.captures(path)?;
    Some((
        caps.name("version").map(|m| m.as_str().to_owned()),
        caps["name"].to_owned(),
    ))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `request_handlers._apply_multi_dict`'s value conversion.
fn query_value(v: &str) -> Value {
    if !v.is_empty() && v.replacen('.', "", 1).chars().all(|c| c.is_ascii_digit()) {
        if v.contains('.') {
            if let Ok(f) = v.parse::<f64>() {
                return json!(f);
            }
        } else if let Ok(i) = v.parse::<i64>() {
            return json!(i);
        }
    }
    match v {
        "true" | "True" | "TRUE" => json!(true),
        "false" | "False" | "FALSE" => json!(false),
        _ => json!(v),
    }
}

fn http_date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

struct Authed {
    identity: Identity,
    token: Option<TokenInfo>,
}

impl State {
    fn company_name(&self, id: &str) -> String {
        self.companies.get(id).cloned().unwrap_or_default()
    }

    fn identity_of(&self, user: &User) -> Identity {
        Identity {
            user: user.id.clone(),
            company: user.company.clone(),
            role: user.role.clone(),
            user_name: user.name.clone(),
            company_name: self.company_name(&user.company),
        }
    }

    fn encode_token(&mut self, identity: &Identity, expiration_sec: Option<i64>) -> String {
        let iat = now();
        let mut claims = json!({
            "auth_type": "Bearer",
            "identity": identity.to_json(),
            "iat": iat,
            "session_id": new_id(),
            "env": "<unknown>",
            "api_version": MAX_VERSION,
            "server_version": "2.0.0",
            "server_build": "stand-in",
            "feature_set": "basic",
        });
        if let Some(sec) = expiration_sec {
            claims["exp"] = json!(iat + sec);
        }
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.token_secret),
        )
        .expect("HS256 token");
        self.issued.push(token.clone());
        token
    }

    /// `AuthBLL.get_token_for_user`.
    fn token_for(
        &mut self,
        user_id: &str,
        company: Option<&str>,
        expiration_sec: Option<i64>,
    ) -> Result<String, Outcome> {
        let user = self
            .users
            .iter()
            .find(|u| u.id == user_id && company.is_none_or(|c| c == u.company))
            .cloned()
            .ok_or_else(|| {
                Outcome::err(400, 301, "Invalid user id")
                    .with_error_data(json!({"id": user_id, "company": company}))
            })?;
        if !self.companies.contains_key(&user.company) {
            return Err(Outcome::err(
                400,
                10,
                "Invalid object id (invalid company associated with user)",
            ));
        }
        let identity = self.identity_of(&user);
        // Token.create_encoded_token: every role but `system` gets an expiry.
        let mut expiration = if user.role == "system" {
            expiration_sec.filter(|s| *s != 0)
        } else {
            Some(
                expiration_sec
                    .filter(|s| *s != 0)
                    .unwrap_or(DEFAULT_EXPIRATION_SEC),
            )
        };
        if let Some(cap) = self.expiration_cap {
            expiration = Some(expiration.map_or(cap, |e| e.min(cap)));
        }
        Ok(self.encode_token(&identity, expiration))
    }

    fn verify(&self, token: &str) -> Result<TokenInfo, Outcome> {
        let invalid = |why: String| Outcome::err(401, 30, format!("Invalid token ({why})"));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let decoded = jsonwebtoken::decode::<Value>(
            token,
            &DecodingKey::from_secret(&self.token_secret),
            &validation,
        )
        .map_err(|e| invalid(format!("invalid jwt token: {e}")))?;
        let claims = decoded.claims;
        let exp = claims["exp"].as_i64();
        if exp.is_some_and(|exp| exp <= now()) {
            return Err(invalid("invalid jwt token: Signature has expired".into()));
        }
        let identity = Identity::from_json(&claims["identity"])
            .ok_or_else(|| invalid("token missing identity".into()))?;
        let session_id = claims["session_id"].as_str().unwrap_or_default().to_owned();
        if !session_id.is_empty() && self.revoked.contains(&session_id) {
            return Err(invalid("revoked token".into()));
        }
        Ok(TokenInfo {
            identity,
            iat: claims["iat"].as_i64().unwrap_or_default(),
            exp,
            session_id,
            claims,
        })
    }

    /// `auth.authorize_credentials` / `authorize_token`.
    fn authenticate(&self, authorization: &str) -> Result<Authed, Outcome> {
        let (kind, data) = authorization.split_once(' ').unwrap_or((authorization, ""));
        match kind {
            "Basic" => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|e| {
                        Outcome::err(
                            401,
                            21,
                            format!("Unauthorized (malformed credentials): {e}"),
                        )
                    })?;
                let text: String = decoded.iter().map(|&b| b as char).collect(); // latin-1
                let (key, secret) = text.split_once(':').unwrap_or((&text, ""));
                let user = self
                    .credentials
                    .get(key)
                    .filter(|(s, _)| s == secret)
                    .and_then(|(_, id)| self.users.iter().find(|u| &u.id == id))
                    .ok_or_else(|| {
                        Outcome::err(
                            401,
                            22,
                            "Unauthorized (invalid credentials): failed to locate provided credentials",
                        )
                    })?;
                if !self.companies.contains_key(&user.company) {
                    return Err(Outcome::err(
                        401,
                        22,
                        "Unauthorized (invalid credentials): invalid user company",
                    ));
                }
                Ok(Authed {
                    identity: self.identity_of(user),
                    token: None,
                })
            }
            "Bearer" => {
                let token = self.verify(data.trim())?;
                Ok(Authed {
                    identity: token.identity.clone(),
                    token: Some(token),
                })
            }
            _ => Err(Outcome::err(
                401,
                10,
                "Unauthorized (bad authentication header type)",
            )),
        }
    }

    fn run(&mut self, req: &ApiRequest, call: &mut Call) -> Outcome {
        match &self.failure {
            Failure::ServerError => return server_error(),
            Failure::ServerErrorOn(ep) if *ep == call.endpoint => return server_error(),
            _ => {}
        }
        let requested = call
            .requested_version
            .clone()
            .unwrap_or_else(|| MAX_VERSION.to_owned());
        let not_found = || {
            Outcome::err(
                404,
                0,
                format!(
                    "Unable to find endpoint for name {} and version {requested}",
                    call.endpoint
                ),
            )
        };
        let Some(spec) = spec(&call.endpoint) else {
            return not_found();
        };
        if version(&requested) < version(spec.min_version) {
            return not_found();
        }

        // The cookie is a starting point; an Authorization header always wins.
        let authorization = match (
            req.header("authorization"),
            req.cookie(&self.opts.cookie_name),
        ) {
            (Some(h), _) => {
                call.auth = if h.starts_with("Basic ") {
                    AuthKind::Basic
                } else if h.starts_with("Bearer ") {
                    AuthKind::Bearer
                } else {
                    AuthKind::Other
                };
                Some(h.to_owned())
            }
            (None, Some(cookie)) => {
                call.auth = AuthKind::Cookie;
                Some(format!("Bearer {cookie}"))
            }
            (None, None) => None,
        };
        let auth = match (spec.authorize, authorization) {
            (Authorize::Never, _) => None,
            (Authorize::Required, None) => {
                return Outcome::err(401, 20, "Unauthorized (missing credentials)")
            }
            (Authorize::Optional, None) => None,
            (authorize, Some(value)) => match self.authenticate(&value) {
                Ok(a) => Some(a),
                Err(e) if authorize == Authorize::Required => return e,
                Err(_) => None,
            },
        };
        if let Some(a) = &auth {
            call.caller = Some(a.identity.user.clone());
            call.caller_role = Some(a.identity.role.clone());
            call.session_id = a.token.as_ref().map(|t| t.session_id.clone());
        }
        let role_refused = |role: &str| {
            Outcome::err(403, 20, "Forbidden (not allowed for role)")
                .with_error_data(json!({"role": role}))
        };
        if spec.authorize == Authorize::Required {
            if let Some(a) = &auth {
                if !spec.allows(&a.identity.role) {
                    return role_refused(&a.identity.role);
                }
            }
        }

        // Impersonation (validators.validate_impersonation).
        let impersonate_as = req
            .header_any(&["x-clearml-impersonate-as", "x-trains-impersonate-as"])
            .map(str::to_owned);
        let act_as = req
            .header_any(&["x-clearml-act-as", "x-trains-act-as"])
            .map(str::to_owned);
        call.impersonate_as.clone_from(&impersonate_as);
        call.act_as.clone_from(&act_as);
        let identity = if impersonate_as.is_some() || act_as.is_some() {
            if impersonate_as.is_some() && act_as.is_some() {
                return Outcome::err(400, 5, "Invalid headers (only one allowed)");
            }
            let Some(a) = &auth else {
                return Outcome::err(500, 1, "Internal server error (validating impersonation)");
            };
            let caller = &a.identity;
            let allowed = if self.opts.system_only_impersonation {
                caller.role == "system"
            } else {
                SYSTEM_ROOT_ADMIN.contains(&caller.role.as_str())
            };
            if !allowed {
                return Outcome::err(400, 6, "Impersonation error (impersonation not allowed)")
                    .with_error_data(json!({"role": caller.role}));
            }
            let target_id = act_as
                .as_deref()
                .or(impersonate_as.as_deref())
                .unwrap_or_default();
            let target = self
                .users
                .iter()
                .find(|u| {
                    u.id == target_id && (caller.role == "root" || u.company == caller.company)
                })
                .cloned();
            let Some(target) = target else {
                return Outcome::err(400, 6, "Impersonation error (unknown user)")
                    .with_error_data(json!({"id": target_id, "company": caller.company}));
            };
            let mut identity = self.identity_of(&target);
            if act_as.is_some() {
                identity.role = caller.role.clone();
                identity.user_name = format!("{} (acting as {})", caller.user_name, target.name);
            } else {
                identity.user_name =
                    format!("{} (impersonated by {})", target.name, caller.user_name);
                self.last_impersonation = Some(target.id.clone());
            }
            if spec.authorize == Authorize::Required && !spec.allows(&identity.role) {
                return role_refused(&identity.role);
            }
            Some(identity)
        } else {
            auth.as_ref().map(|a| a.identity.clone())
        };
        call.identity.clone_from(&identity);

        // The body: JSON (an object), merged with the query string.
        let mut data = if req.body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&req.body) {
                Ok(Value::Object(m)) => m,
                Ok(Value::Null) => Map::new(),
                Ok(_) => return Outcome::err(400, 0, "Data should be a dict"),
                Err(e) => {
                    return Outcome::err(400, 0, format!("Failed to decode JSON object: {e}"))
                }
            }
        };
        for (k, v) in url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes()) {
            data.insert(k.trim_end_matches("[]").to_owned(), query_value(&v));
        }
        let data = Value::Object(data);
        call.body = data.clone();

        self.dispatch(&call.endpoint, &data, auth.as_ref(), identity.as_ref())
    }

    fn dispatch(
        &mut self,
        endpoint: &str,
        data: &Value,
        auth: Option<&Authed>,
        identity: Option<&Identity>,
    ) -> Outcome {
        let str_field = |k: &str| data[k].as_str().map(str::to_owned);
        let expiration = || -> Result<Option<i64>, Outcome> {
            match &data["expiration_sec"] {
                Value::Null => Ok(None),
                v => match v.as_i64() {
                    Some(s) if s > MAX_EXPIRATION_SEC => Err(validation_error(format!(
                        "expiration_sec: value {s} is bigger than {MAX_EXPIRATION_SEC}"
                    ))),
                    Some(s) => Ok(Some(s)),
                    None => Err(validation_error(format!(
                        "expiration_sec: not an integer: {v}"
                    ))),
                },
            }
        };
        match endpoint {
            "auth.login" => {
                let Some(identity) = identity else {
                    return Outcome::err(401, 20, "Unauthorized (missing credentials)");
                };
                let exp = match expiration() {
                    Ok(e) => e,
                    Err(o) => return o,
                };
                match self.token_for(&identity.user, Some(&identity.company), exp) {
                    Ok(token) => Outcome::ok(json!({ "token": token })).set_cookie(token),
                    Err(o) => o,
                }
            }
            "auth.get_token_for_user" => {
                let Some(user) = str_field("user") else {
                    return validation_error("user: field is required");
                };
                let exp = match expiration() {
                    Ok(e) => e,
                    Err(o) => return o,
                };
                let company = str_field("company");
                match self.token_for(&user, company.as_deref(), exp) {
                    Ok(token) => Outcome::ok(json!({ "token": token })),
                    Err(o) => o,
                }
            }
            "auth.logout" | "login.logout" => {
                if let Some(token) = auth.and_then(|a| a.token.as_ref()) {
                    if !token.session_id.is_empty() && !self.revoked.contains(&token.session_id) {
                        self.revoked.push(token.session_id.clone());
                    }
                }
                Outcome::ok(json!({})).clear_cookie()
            }
            "auth.validate_token" => {
                let token = str_field("token").unwrap_or_default();
                match self.verify(&token) {
                    Ok(t) => Outcome::ok(json!({
                        "valid": true,
                        "user": t.identity.user,
                        "company": t.identity.company,
                    })),
                    Err(o) => Outcome::ok(json!({ "valid": false, "msg": o.msg })),
                }
            }
            "auth.create_user" => self.create_user(data, identity),
            "auth.edit_user" => self.edit_user(data, identity),
            "auth.fixed_users_mode" => Outcome::ok(json!({
                "enabled": self.opts.fixed_users,
                "guest": { "enabled": self.opts.fixed_users && self.opts.guest },
                "server_errors": {},
            })),
            "login.supported_modes" => {
                let guest = if self.opts.fixed_users && self.opts.guest {
                    json!({ "enabled": true, "name": GUEST.0, "username": GUEST.1, "password": GUEST.2 })
                } else {
                    json!({ "enabled": false })
                };
                Outcome::ok(json!({
                    "basic": { "enabled": self.opts.fixed_users, "guest": guest },
                    "sso": {},
                    "sso_providers": [],
                    "server_errors": { "missed_es_upgrade": false, "es_connection_error": false },
                    "authenticated": auth.is_some(),
                }))
            }
            "users.get_current_user" => {
                let Some(identity) = identity else {
                    return Outcome::err(401, 20, "Unauthorized (missing credentials)");
                };
                let Some(user) = self
                    .users
                    .iter()
                    .find(|u| u.id == identity.user && u.company == identity.company)
                else {
                    return Outcome::err(400, 300, "Invalid user (failed loading user)");
                };
                Outcome::ok(json!({
                    "user": {
                        "id": user.id,
                        "name": user.name,
                        "email": user.email,
                        "given_name": user.given_name,
                        "family_name": user.family_name,
                        "avatar": user.avatar,
                        "company": { "id": user.company, "name": self.company_name(&user.company) },
                        "role": identity.role,
                        "preferences": {},
                    },
                    "getting_started": null,
                    "settings": { "max_download_items": 1000 },
                }))
            }
            "debug.ping" => Outcome::ok(json!({ "msg": "ClearML server" })),
            "projects.get_all" | "projects.get_all_ex" => Outcome::ok(json!({ "projects": [] })),
            "tasks.get_all" | "tasks.get_all_ex" => Outcome::ok(json!({ "tasks": [] })),
            _ => Outcome::err(
                404,
                0,
                format!("Unable to find endpoint for name {endpoint}"),
            ),
        }
    }

    /// `auth.create_user` (`AuthBLL.create_user`).
    fn create_user(&mut self, data: &Value, identity: Option<&Identity>) -> Outcome {
        let Some(caller) = identity else {
            return Outcome::err(401, 20, "Unauthorized (missing credentials)");
        };
        let field = |k: &str| data[k].as_str().map(str::to_owned);
        for required in ["name", "company", "email"] {
            if field(required).is_none() {
                return validation_error(format!("{required}: field is required"));
            }
        }
        let (name, company, email) = (
            field("name").unwrap_or_default(),
            field("company").unwrap_or_default(),
            field("email").unwrap_or_default(),
        );
        let role = field("role").unwrap_or_else(|| "user".to_owned());
        if !ROLES.contains(&role.as_str()) {
            return validation_error(format!("role: value {role} not in allowed values"));
        }
        if SYSTEM_ROLES.contains(&role.as_str()) {
            return validation_error(format!(
                "role: the stand-in never creates a person with role {role}"
            ));
        }
        if !SYSTEM_ROLES.contains(&caller.role.as_str()) && company != caller.company {
            return Outcome::err(
                400,
                10,
                "Invalid object id (cannot create user in another company)",
            );
        }
        if !self.companies.contains_key(&company) {
            return Outcome::err(400, 10, "Invalid object id")
                .with_error_data(json!({"company": company}));
        }
        if !email.contains('@') {
            return Outcome::err(400, 22, "Malformed email address")
                .with_error_data(json!({"email": email}));
        }
        // The auth database's unique (case-sensitive) index on `email`.
        if self.users.iter().any(|u| u.email == email) {
            return Outcome::err(
                400,
                801,
                "Value combination already exists (unique field already contains this value)",
            )
            .with_error_data(json!({ "email": email }));
        }
        let id = new_id();
        self.users.push(User {
            id: id.clone(),
            name,
            email,
            role,
            company,
            given_name: field("given_name"),
            family_name: field("family_name"),
            avatar: field("avatar"),
            internal: false,
        });
        Outcome::ok(json!({ "id": id }))
    }

    /// `auth.edit_user {user, role}`: users of the caller's company only.
    fn edit_user(&mut self, data: &Value, identity: Option<&Identity>) -> Outcome {
        let Some(caller) = identity else {
            return Outcome::err(401, 20, "Unauthorized (missing credentials)");
        };
        let Some(user_id) = data["user"].as_str() else {
            return validation_error("user: field is required");
        };
        let role = match &data["role"] {
            Value::Null => None,
            Value::String(r)
                if ROLES.contains(&r.as_str()) && !SYSTEM_ROLES.contains(&r.as_str()) =>
            {
                Some(r.clone())
            }
            other => return validation_error(format!("role: value {other} not in allowed values")),
        };
        let Some(user) = self
            .users
            .iter_mut()
            .find(|u| u.id == user_id && u.company == caller.company)
        else {
            return Outcome::err(400, 301, "Invalid user id");
        };
        let mut fields = Map::new();
        let mut updated = 0;
        if let Some(role) = role {
            if user.role != role {
                updated = 1;
                user.role.clone_from(&role);
            }
            fields.insert("role".to_owned(), json!(role));
        }
        Outcome::ok(json!({ "updated": updated, "fields": fields }))
    }
}

/// Answer one API request (the API URL or the webserver's `/api` route).
fn handle_api(state: &mut State, req: &ApiRequest) -> Response<Body> {
    if req.method == "OPTIONS" {
        return http_server::response(200, "text/html", "");
    }
    if let Failure::Html(status) = state.failure {
        return http_server::response(
            status,
            "text/html",
            "<html><body><h1>Service Temporarily Unavailable</h1></body></html>",
        );
    }
    let id = new_id();
    let trx = req
        .header_any(&["x-clearml-trx", "x-trains-trx"])
        .map_or_else(|| id.clone(), str::to_owned);
    let Some((requested_version, endpoint)) = parse_path(&req.path) else {
        let outcome = Outcome::err(400, 0, format!("Invalid request path {}", req.path));
        return respond(state, &id, &trx, "", None, None, outcome);
    };
    let mut call = Call {
        endpoint: endpoint.clone(),
        requested_version: requested_version.clone(),
        via_web: req.via_web,
        method: req.method.clone(),
        headers: req.headers.clone(),
        auth: AuthKind::None,
        caller: None,
        caller_role: None,
        session_id: None,
        impersonate_as: None,
        act_as: None,
        identity: None,
        body: json!({}),
        result_code: 0,
        result_subcode: 0,
        result_msg: String::new(),
        data: json!({}),
    };
    let outcome = state.run(req, &mut call);
    call.result_code = outcome.code;
    call.result_subcode = outcome.subcode;
    call.result_msg.clone_from(&outcome.msg);
    call.data = outcome.data.clone();
    state.calls.push(call);
    let actual = spec(&endpoint).map(|s| s.min_version);
    let requested = requested_version.unwrap_or_else(|| MAX_VERSION.to_owned());
    respond(
        state,
        &id,
        &trx,
        &endpoint,
        Some(&requested),
        actual,
        outcome,
    )
}

fn respond(
    state: &State,
    id: &str,
    trx: &str,
    endpoint: &str,
    requested_version: Option<&str>,
    actual_version: Option<&str>,
    outcome: Outcome,
) -> Response<Body> {
    let body = json!({
        "meta": {
            "id": id,
            "trx": trx,
            "endpoint": {
                "name": endpoint,
                "requested_version": requested_version,
                "actual_version": actual_version,
            },
            "result_code": outcome.code,
            "result_subcode": outcome.subcode,
            "result_msg": outcome.msg,
            "error_stack": null,
            "error_data": outcome.error_data,
        },
        "data": outcome.data,
    });
    let mut builder = Response::builder()
        .status(outcome.code)
        .header("content-type", "application/json")
        .header("server", "clearml");
    let name = &state.opts.cookie_name;
    match outcome.cookie {
        // Werkzeug's set_cookie with the server's `apiserver.auth.cookies` settings.
        Some(Some(token)) => {
            builder = builder.header(
                "set-cookie",
                format!(
                    "{name}={token}; Expires={}; Max-Age=99999999999; HttpOnly; Path=/; SameSite=Lax",
                    http_date(now() + 99_999_999_999)
                ),
            );
        }
        Some(None) => {
            builder = builder.header(
                "set-cookie",
                format!(
                    "{name}=; Expires={}; Max-Age=0; HttpOnly; Path=/; SameSite=Lax",
                    http_date(0)
                ),
            );
        }
        None => {}
    }
    builder
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

fn api_handler(state: Shared) -> Handler {
    Arc::new(move |req| {
        let state = state.clone();
        Box::pin(async move {
            let req = ApiRequest::read(req, false).await;
            handle_api(&mut lock(&state), &req)
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The webserver

fn web_handler(state: Shared) -> Handler {
    Arc::new(move |req| {
        let state = state.clone();
        Box::pin(async move {
            let req = ApiRequest::read(req, true).await;
            let record = EchoRequest {
                method: req.method.clone(),
                path: req.path.clone(),
                query: req.query.clone(),
                headers: req.headers.clone(),
                body: String::from_utf8_lossy(&req.body).into_owned(),
            };
            let fallback = {
                let mut s = lock(&state);
                s.web_requests.push(record);
                s.fallback.clone()
            };
            if let Some(rest) = req.path.strip_prefix("/api/") {
                let mut s = lock(&state);
                if s.failure == Failure::Down {
                    return http_server::response(
                        502,
                        "text/html",
                        "<html><head><title>502 Bad Gateway</title></head><body>\
                         <center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>\
                         </body></html>",
                    );
                }
                let api_req = ApiRequest {
                    path: format!("/{rest}"),
                    ..req
                };
                return handle_api(&mut s, &api_req);
            }
            match fallback {
                Some(base) => forward(&base, req).await,
                None => http_server::response(
                    200,
                    "text/html",
                    "<!doctype html><title>ClearML</title><p>ClearML web app stand-in</p>",
                ),
            }
        })
    })
}

/// Forward a non-API request to the web app.
async fn forward(base: &str, req: ApiRequest) -> Response<Body> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    });
    let target = match &req.query {
        Some(q) => format!("{base}{}?{q}", req.path),
        None => format!("{base}{}", req.path),
    };
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut rb = client.request(method, target);
    for (n, v) in &req.headers {
        if !matches!(
            n.to_ascii_lowercase().as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive"
        ) {
            rb = rb.header(n.as_str(), v.as_str());
        }
    }
    let resp = match rb.body(req.body).send().await {
        Ok(r) => r,
        Err(e) => return http_server::response(502, "text/plain", format!("web app: {e}")),
    };
    let mut builder = Response::builder().status(resp.status().as_u16());
    for (n, v) in resp.headers() {
        if !matches!(
            n.as_str(),
            "content-length" | "connection" | "transfer-encoding" | "keep-alive"
        ) {
            builder = builder.header(n.as_str(), v.as_bytes());
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    builder.body(Full::new(bytes)).expect("valid response")
}

// ---------------------------------------------------------------------------------------------
// A listener that can be stopped (port closed) and started again on the same address.

struct Listener {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn bind(addr: SocketAddr, handler: Handler) -> std::io::Result<(Self, SocketAddr)> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("clearml-api".to_owned())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(accept_loop(listener, handler, rx));
                // Dropping the runtime here drops every connection task: open connections close.
            })?;
        Ok((
            Self {
                stop: Some(tx),
                thread: Some(thread),
            },
            local,
        ))
    }
}

async fn accept_loop(listener: TcpListener, handler: Handler, mut stop: oneshot::Receiver<()>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
