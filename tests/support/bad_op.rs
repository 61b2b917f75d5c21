//! A misbehaving OpenID Provider, in process, for the negative cases that no real IdP produces.
//!
//! It is strict where a real OP is (client authentication, single-use codes, exact
//! `redirect_uri`, PKCE `S256`/`plain`), and crafts the ID token per the current [`Mode`].
//! `/authorize` answers at once with a redirect back to the client (no login page).
//! Counters let a test check, e.g., that the JWKS was fetched again exactly once.
//!
//! Beyond the bad ID tokens it can be laid out like a real IdP ([`Layout`]: Keycloak realm paths,
//! Entra tenant paths, Cognito, Google, ADFS, Auth0, Okta, Ping), shape the claims of each token
//! ([`Target`]), issue JWT access tokens (Keycloak), `sid`s, refresh tokens (rotating or not,
//! failing on demand), serve a revocation endpoint, and sign back-channel logout tokens.

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
    /// `iss` equal to the issuer without its scheme (Google's other documented form).
    IssWithoutScheme,
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

/// Where a real IdP serves its endpoints, relative to the BadOp's root URL. [`Layout::default`]
/// is the BadOp's own flat layout (issuer = root URL, `/authorize`, `/token`, ...).
#[derive(Clone, Debug)]
pub struct Layout {
    /// The issuer (as tokens carry it) is the root URL + this path. `"/"` keeps a trailing slash
    /// (Auth0).
    pub issuer_path: String,
    /// Where discovery is served: `<this>/.well-known/openid-configuration`; default: the issuer
    /// path. Entra multi-tenant serves it under `/common/v2.0`.
    pub discovery_path: Option<String>,
    /// The `issuer` of the discovery document when it is not the tokens' issuer; `{base}` is
    /// replaced by the root URL. Entra multi-tenant: `{base}/{tenantid}/v2.0`.
    pub discovery_issuer: Option<String>,
    pub authorize: String,
    pub token: String,
    pub userinfo: String,
    pub jwks: String,
    pub end_session: Option<String>,
    pub revocation: Option<String>,
    /// RFC 9207: the authorization response carries `iss`, and discovery says so.
    pub iss_param: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            issuer_path: String::new(),
            discovery_path: None,
            discovery_issuer: None,
            authorize: "/authorize".into(),
            token: "/token".into(),
            userinfo: "/userinfo".into(),
            jwks: "/jwks".into(),
            end_session: Some("/logout".into()),
            revocation: None,
            iss_param: true,
        }
    }
}

impl Layout {
    /// Keycloak: issuer `/realms/<realm>`, endpoints under `/realms/<realm>/protocol/openid-connect/`.
    pub fn keycloak(realm: &str) -> Self {
        let oc = format!("/realms/{realm}/protocol/openid-connect");
        Self {
            issuer_path: format!("/realms/{realm}"),
            authorize: format!("{oc}/auth"),
            token: format!("{oc}/token"),
            userinfo: format!("{oc}/userinfo"),
            jwks: format!("{oc}/certs"),
            end_session: Some(format!("{oc}/logout")),
            revocation: Some(format!("{oc}/revoke")),
            iss_param: true,
            ..Self::default()
        }
    }

    /// Entra ID (single tenant): issuer `/<tenant>/v2.0`, `/<tenant>/oauth2/v2.0/authorize`, keys
    /// at `/<tenant>/discovery/v2.0/keys`, userinfo on Graph's `/oidc/userinfo`. No RFC 9207.
    pub fn entra(tenant: &str) -> Self {
        Self {
            issuer_path: format!("/{tenant}/v2.0"),
            authorize: format!("/{tenant}/oauth2/v2.0/authorize"),
            token: format!("/{tenant}/oauth2/v2.0/token"),
            userinfo: "/oidc/userinfo".into(),
            jwks: format!("/{tenant}/discovery/v2.0/keys"),
            end_session: Some(format!("/{tenant}/oauth2/v2.0/logout")),
            revocation: None,
            iss_param: false,
            ..Self::default()
        }
    }

    /// Entra ID multi-tenant (`common`): discovery under `/common/v2.0` with the issuer template
    /// `{base}/{tenantid}/v2.0`; tokens carry the user's tenant (`iss` `/<tenant>/v2.0`, `tid`).
    pub fn entra_common(tenant: &str) -> Self {
        Self {
            issuer_path: format!("/{tenant}/v2.0"),
            discovery_path: Some("/common/v2.0".into()),
            discovery_issuer: Some("{base}/{tenantid}/v2.0".into()),
            authorize: "/common/oauth2/v2.0/authorize".into(),
            token: "/common/oauth2/v2.0/token".into(),
            userinfo: "/oidc/userinfo".into(),
            jwks: "/common/discovery/v2.0/keys".into(),
            end_session: Some("/common/oauth2/v2.0/logout".into()),
            revocation: None,
            iss_param: false,
        }
    }

    /// Cognito: issuer `/<pool>` (as `cognito-idp.<region>.amazonaws.com/<pool>`), the hosted UI
    /// (`/oauth2/authorize`, `/oauth2/token`, `/oauth2/userInfo`, `/logout`) at the root, no
    /// `end_session_endpoint` in discovery.
    pub fn cognito(pool: &str) -> Self {
        Self {
            issuer_path: format!("/{pool}"),
            authorize: "/oauth2/authorize".into(),
            token: "/oauth2/token".into(),
            userinfo: "/oauth2/userInfo".into(),
            jwks: format!("/{pool}/.well-known/jwks.json"),
            end_session: None,
            revocation: Some("/oauth2/revoke".into()),
            iss_param: false,
            ..Self::default()
        }
    }

    /// Google: issuer = root (`https://accounts.google.com`), `/o/oauth2/v2/auth`, keys at
    /// `/oauth2/v3/certs`, no end-session endpoint.
    pub fn google() -> Self {
        Self {
            authorize: "/o/oauth2/v2/auth".into(),
            token: "/token".into(),
            userinfo: "/v1/userinfo".into(),
            jwks: "/oauth2/v3/certs".into(),
            end_session: None,
            revocation: Some("/revoke".into()),
            iss_param: false,
            ..Self::default()
        }
    }

    /// ADFS: issuer `/adfs`, `/adfs/oauth2/authorize/`, keys at `/adfs/discovery/keys`.
    pub fn adfs() -> Self {
        Self {
            issuer_path: "/adfs".into(),
            authorize: "/adfs/oauth2/authorize/".into(),
            token: "/adfs/oauth2/token/".into(),
            userinfo: "/adfs/userinfo".into(),
            jwks: "/adfs/discovery/keys".into(),
            end_session: Some("/adfs/oauth2/logout".into()),
            revocation: None,
            iss_param: false,
            ..Self::default()
        }
    }

    /// Auth0: the issuer has a trailing slash (`https://<tenant>.auth0.com/`), `/oauth/token`,
    /// keys at `/.well-known/jwks.json`, `/oidc/logout`, `/oauth/revoke`.
    pub fn auth0() -> Self {
        Self {
            issuer_path: "/".into(),
            authorize: "/authorize".into(),
            token: "/oauth/token".into(),
            userinfo: "/userinfo".into(),
            jwks: "/.well-known/jwks.json".into(),
            end_session: Some("/oidc/logout".into()),
            revocation: Some("/oauth/revoke".into()),
            iss_param: false,
            ..Self::default()
        }
    }

    /// Okta (custom authorization server `default`): issuer `/oauth2/default`, `/v1/...` below.
    pub fn okta() -> Self {
        let base = "/oauth2/default";
        Self {
            issuer_path: base.into(),
            authorize: format!("{base}/v1/authorize"),
            token: format!("{base}/v1/token"),
            userinfo: format!("{base}/v1/userinfo"),
            jwks: format!("{base}/v1/keys"),
            end_session: Some(format!("{base}/v1/logout")),
            revocation: Some(format!("{base}/v1/revoke")),
            iss_param: true,
            ..Self::default()
        }
    }

    /// PingOne: issuer `/<env>/as`, endpoints `/<env>/as/{authorize,token,userinfo,jwks,signoff}`.
    pub fn ping(env: &str) -> Self {
        let base = format!("/{env}/as");
        Self {
            issuer_path: base.clone(),
            authorize: format!("{base}/authorize"),
            token: format!("{base}/token"),
            userinfo: format!("{base}/userinfo"),
            jwks: format!("{base}/jwks"),
            end_session: Some(format!("{base}/signoff")),
            revocation: Some(format!("{base}/revoke")),
            iss_param: false,
            ..Self::default()
        }
    }

    fn discovery_at(&self) -> String {
        let base = self.discovery_path.as_deref().unwrap_or(&self.issuer_path);
        format!(
            "{}/.well-known/openid-configuration",
            base.trim_end_matches('/')
        )
    }
}

/// Which token (or answer) extra or omitted claims apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    IdToken,
    Userinfo,
    /// JWT access tokens (see [`BadOp::set_jwt_access_tokens`]).
    AccessToken,
}

/// How the refresh grant fails, when it should.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshFailure {
    /// 400 `invalid_grant` (the user was disabled, the token revoked).
    InvalidGrant,
    /// 500 (the IdP is having a bad day).
    ServerError,
}

/// Which key signs a JWT made with [`BadOp::sign_jwt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    /// The key the JWKS serves.
    Primary,
    /// Another key, under the primary `kid` (a bad signature).
    Other,
    /// `alg: none`, no signature.
    None,
}

struct PendingCode {
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

struct State {
    base: String,
    issuer: String,
    layout: Layout,
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
    // Claim shaping.
    extra_claims: HashMap<Target, serde_json::Map<String, Value>>,
    omitted_claims: HashMap<Target, Vec<String>>,
    jwt_access_tokens: bool,
    access_token_signer: Signer,
    with_sid: bool,
    sids: Vec<String>,
    // Token lifetimes and refresh.
    expires_in: u64,
    refresh_expires_in: u64,
    refresh_tokens: bool,
    rotate_refresh_tokens: bool,
    refresh_failure: Option<RefreshFailure>,
    refresh_delay: std::time::Duration,
    /// Refresh token → still usable.
    live_refresh_tokens: HashMap<String, bool>,
    issued_refresh_tokens: Vec<String>,
    refresh_requests: usize,
    presented_refresh_tokens: Vec<String>,
    reused_refresh_tokens: usize,
    revocations: Vec<(String, String)>,
    /// `METHOD path` of every request, in order.
    requests: Vec<String>,
    // Endpoint availability.
    /// `false`: discovery answers 404 (explicit endpoints must stand alone).
    discovery_available: bool,
    /// Answer the JWKS with this status and no keys (the IdP having a bad day).
    jwks_status: Option<u16>,
    /// Wait this long before answering the JWKS (a slow IdP; lets concurrent requests overlap).
    jwks_delay: std::time::Duration,
    /// Token endpoint client authentication methods advertised and accepted.
    auth_methods: Vec<String>,
}

impl State {
    fn key(&mut self, name: &'static str) -> Arc<Key> {
        self.extra.entry(name).or_insert_with(Key::generate).clone()
    }

    /// The user's claims for `target`, with the omitted ones removed and the extra ones added.
    fn claims_for(&self, target: Target) -> serde_json::Map<String, Value> {
        let mut claims = user_claims(&self.user);
        for name in self.omitted_claims.get(&target).into_iter().flatten() {
            claims.remove(name);
        }
        for (k, v) in self.extra_claims.get(&target).into_iter().flatten() {
            claims.insert(k.clone(), v.clone());
        }
        claims
    }
}

pub struct BadOp {
    /// The issuer as tokens carry it: `http://127.0.0.1:<port>` + the layout's issuer path (no
    /// trailing slash with the default layout).
    pub issuer: String,
    /// `http://127.0.0.1:<port>`, the server root.
    pub base: String,
    pub port: u16,
    pub client_id: String,
    pub client_secret: String,
    pub layout: Layout,
    state: Arc<Mutex<State>>,
    _server: ServerThread,
}

impl BadOp {
    /// Start a BadOp in [`Mode::Good`] for one confidential client.
    pub fn start(client_id: &str, client_secret: &str) -> Self {
        Self::start_with(client_id, client_secret, Layout::default())
    }

    /// Start a BadOp laid out like a real IdP.
    pub fn start_with(client_id: &str, client_secret: &str, layout: Layout) -> Self {
        let primary = Key::generate();
        let state = Arc::new(Mutex::new(State {
            base: String::new(),
            issuer: String::new(),
            layout: layout.clone(),
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
            extra_claims: HashMap::new(),
            omitted_claims: HashMap::new(),
            jwt_access_tokens: false,
            access_token_signer: Signer::Primary,
            with_sid: false,
            sids: Vec::new(),
            expires_in: 3600,
            refresh_expires_in: 3600,
            refresh_tokens: false,
            rotate_refresh_tokens: false,
            refresh_failure: None,
            refresh_delay: std::time::Duration::ZERO,
            live_refresh_tokens: HashMap::new(),
            issued_refresh_tokens: Vec::new(),
            refresh_requests: 0,
            presented_refresh_tokens: Vec::new(),
            reused_refresh_tokens: 0,
            revocations: Vec::new(),
            requests: Vec::new(),
            discovery_available: true,
            jwks_status: None,
            jwks_delay: std::time::Duration::ZERO,
            auth_methods: vec!["client_secret_basic".into(), "client_secret_post".into()],
        }));
        let shared = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let state = shared.clone();
            Box::pin(async move { handle(req, state).await })
        });
        let server = ServerThread::start("bad-op", handler);
        let base = server.url();
        let issuer = format!("{base}{}", layout.issuer_path);
        {
            let mut s = state.lock().expect("lock");
            s.base = base.clone();
            s.issuer = issuer.clone();
        }
        Self {
            issuer,
            base,
            port: server.port(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            layout,
            state,
            _server: server,
        }
    }

    /// The server root + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

    /// Add (or replace) claims in every `target` token/answer from now on; `extra` is a JSON
    /// object. Replaces earlier extras for that target.
    pub fn set_extra_claims(&self, target: Target, extra: Value) {
        let map = extra
            .as_object()
            .cloned()
            .expect("extra claims are an object");
        self.with(|s| s.extra_claims.insert(target, map));
    }

    /// Leave these user claims out of every `target` token/answer from now on.
    pub fn set_omitted_claims(&self, target: Target, names: &[&str]) {
        let names = names.iter().map(|n| (*n).to_owned()).collect();
        self.with(|s| s.omitted_claims.insert(target, names));
    }

    /// Access tokens become RS256 JWTs signed by the primary key, as Keycloak issues them:
    /// `iss`, `sub`, `aud: account`, `azp`, `exp`, `iat`, `typ: Bearer` and the user's claims.
    pub fn set_jwt_access_tokens(&self, on: bool) {
        self.with(|s| s.jwt_access_tokens = on);
    }

    /// Which key signs JWT access tokens (default: the primary key).
    pub fn set_access_token_signer(&self, signer: Signer) {
        self.with(|s| {
            s.access_token_signer = signer;
            if signer == Signer::Other {
                drop(s.key("other"));
            }
        });
    }

    /// Put a fresh `sid` into each ID token (see [`last_sid`](Self::last_sid)).
    pub fn set_sid(&self, on: bool) {
        self.with(|s| s.with_sid = on);
    }

    pub fn last_sid(&self) -> Option<String> {
        self.with(|s| s.sids.last().cloned())
    }

    /// `expires_in` of the code grant's access token (default 3600).
    pub fn set_expires_in(&self, secs: u64) {
        self.with(|s| s.expires_in = secs);
    }

    /// `expires_in` of access tokens from the refresh grant (default 3600).
    pub fn set_refresh_expires_in(&self, secs: u64) {
        self.with(|s| s.refresh_expires_in = secs);
    }

    /// Issue refresh tokens; with `rotate`, each refresh returns a new one and the old one is
    /// refused from then on (a reuse counts in [`reused_refresh_tokens`](Self::reused_refresh_tokens)).
    pub fn issue_refresh_tokens(&self, rotate: bool) {
        self.with(|s| {
            s.refresh_tokens = true;
            s.rotate_refresh_tokens = rotate;
        });
    }

    /// Make the refresh grant fail (`None`: work again).
    pub fn set_refresh_failure(&self, failure: Option<RefreshFailure>) {
        self.with(|s| s.refresh_failure = failure);
    }

    /// Hold each refresh-grant answer this long (to line concurrent requests up).
    pub fn set_refresh_delay(&self, delay: std::time::Duration) {
        self.with(|s| s.refresh_delay = delay);
    }

    /// Refresh-grant requests so far (any outcome).
    pub fn refresh_requests(&self) -> usize {
        self.with(|s| s.refresh_requests)
    }

    /// Refresh tokens presented to the refresh grant, in order.
    pub fn presented_refresh_tokens(&self) -> Vec<String> {
        self.with(|s| s.presented_refresh_tokens.clone())
    }

    /// Refresh tokens issued so far, in order (code grant first, then rotations).
    pub fn issued_refresh_tokens(&self) -> Vec<String> {
        self.with(|s| s.issued_refresh_tokens.clone())
    }

    /// Presentations of a refresh token that had already been rotated away.
    pub fn reused_refresh_tokens(&self) -> usize {
        self.with(|s| s.reused_refresh_tokens)
    }

    /// `(token_type_hint, token)` of every accepted revocation request.
    pub fn revocations(&self) -> Vec<(String, String)> {
        self.with(|s| s.revocations.clone())
    }

    /// Requests to exactly this path (any method).
    pub fn hits(&self, path: &str) -> usize {
        self.with(|s| {
            s.requests
                .iter()
                .filter(|r| r.split_once(' ').is_some_and(|(_, p)| p == path))
                .count()
        })
    }

    /// `METHOD path` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }

    /// A JWT with `claims`, signed as `signer` says (RS256 under the primary `kid`, unless
    /// [`Signer::None`]); `typ` goes into the header.
    pub fn sign_jwt(&self, claims: &Value, signer: Signer, typ: &str) -> String {
        self.with(|s| {
            let header = json!({ "alg": "RS256", "typ": typ, "kid": s.primary.kid });
            match signer {
                Signer::Primary => s.primary.sign(&header, claims),
                Signer::Other => s.key("other").sign(&header, claims),
                Signer::None => {
                    let header = json!({ "alg": "none", "typ": typ });
                    format!(
                        "{}.{}.",
                        b64url(header.to_string().as_bytes()),
                        b64url(claims.to_string().as_bytes())
                    )
                }
            }
        })
    }

    /// The claims of a valid back-channel logout token for our client (`iss`, `aud`, `iat`,
    /// `exp`, a fresh `jti`, the logout event) with `sid` and/or `sub`.
    pub fn logout_token_claims(&self, sid: Option<&str>, sub: Option<&str>) -> Value {
        let t = now();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": t,
            "exp": t + 120,
            "jti": random_string(20),
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        if let Some(sid) = sid {
            claims["sid"] = json!(sid);
        }
        if let Some(sub) = sub {
            claims["sub"] = json!(sub);
        }
        claims
    }

    /// `false`: `/.well-known/openid-configuration` answers 404 from now on.
    pub fn set_discovery_available(&self, on: bool) {
        self.with(|s| s.discovery_available = on);
    }

    /// `Some(status)`: the JWKS endpoint answers that status (fetches still count).
    pub fn set_jwks_status(&self, status: Option<u16>) {
        self.with(|s| s.jwks_status = status);
    }

    /// Delay every JWKS answer.
    pub fn set_jwks_delay(&self, delay: std::time::Duration) {
        self.with(|s| s.jwks_delay = delay);
    }

    /// Advertise (in discovery) and accept only these client authentication methods.
    pub fn set_auth_methods(&self, methods: &[&str]) {
        self.with(|s| s.auth_methods = methods.iter().map(|m| (*m).to_owned()).collect());
    }

    /// The JWKS stops serving the primary key (it serves a new one instead), while tokens are
    /// still signed with it: a key the IdP removed, e.g. after a compromise.
    pub fn remove_primary_key_from_jwks(&self) {
        self.with(|s| {
            let next = s.key("next");
            s.served = vec![next];
        });
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

    /// Every ID, access and refresh token issued so far: none may ever appear on a page or in
    /// logs.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| s.issued.clone())
    }

    pub fn last_id_token(&self) -> Option<String> {
        self.with(|s| s.id_tokens.last().cloned())
    }

    /// The access token of the most recent token response (code or refresh grant).
    pub fn last_access_token(&self) -> Option<String> {
        self.with(|s| {
            s.issued
                .iter()
                .rev()
                .find(|t| s.access_tokens.contains_key(*t))
                .cloned()
        })
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

/// The endpoint a request path names: the layout's paths, or the same under `/alt` (for tests
/// of explicit endpoint settings that differ from discovery).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Discovery,
    Jwks,
    AttackerJwks,
    Authorize,
    Token,
    Userinfo,
    EndSession,
    Revocation,
}

fn endpoint(layout: &Layout, path: &str) -> Option<Endpoint> {
    let path = path
        .strip_prefix("/alt")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path);
    let is = |p: &str| p == path;
    if is(&layout.discovery_at()) {
        Some(Endpoint::Discovery)
    } else if is(&layout.jwks) {
        Some(Endpoint::Jwks)
    } else if is("/attacker-jwks") {
        Some(Endpoint::AttackerJwks)
    } else if is(&layout.authorize) {
        Some(Endpoint::Authorize)
    } else if is(&layout.token) {
        Some(Endpoint::Token)
    } else if is(&layout.userinfo) {
        Some(Endpoint::Userinfo)
    } else if layout.end_session.as_deref().is_some_and(is) || is("/logout") {
        Some(Endpoint::EndSession)
    } else if layout.revocation.as_deref().is_some_and(is) || is("/revoke") {
        Some(Endpoint::Revocation)
    } else {
        None
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
    let found = {
        let mut s = state.lock().expect("lock");
        s.requests.push(format!("{method} {path}"));
        endpoint(&s.layout, &path)
    };
    match (method, found) {
        (Method::GET, Some(Endpoint::Discovery)) => {
            let s = state.lock().expect("lock");
            if !s.discovery_available {
                return http_server::response(404, "text/plain", "not found");
            }
            http_server::json_response(200, &discovery(&s))
        }
        (Method::GET, Some(Endpoint::Jwks)) => {
            let delay = state.lock().expect("lock").jwks_delay;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut s = state.lock().expect("lock");
            s.jwks_fetches += 1;
            if let Some(status) = s.jwks_status {
                return http_server::response(status, "text/plain", "JWKS unavailable");
            }
            let keys: Vec<Value> = s.served.iter().map(|k| k.public_jwk()).collect();
            http_server::json_response(200, &json!({ "keys": keys }))
        }
        (Method::GET, Some(Endpoint::AttackerJwks)) => {
            let mut s = state.lock().expect("lock");
            let key = s.key("attacker");
            http_server::json_response(200, &json!({ "keys": [key.public_jwk()] }))
        }
        (Method::GET, Some(Endpoint::Authorize)) => {
            authorize(&query, &mut state.lock().expect("lock"))
        }
        (Method::POST, Some(Endpoint::Token)) => {
            let body = http_server::read_body(req.into_body()).await;
            let params = parse_form(&String::from_utf8_lossy(&body));
            if param(&params, "grant_type") == Some("refresh_token") {
                let delay = state.lock().expect("lock").refresh_delay;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            token(
                auth_header.as_deref(),
                &params,
                &mut state.lock().expect("lock"),
            )
        }
        (Method::GET | Method::POST, Some(Endpoint::Userinfo)) => {
            userinfo(auth_header.as_deref(), &mut state.lock().expect("lock"))
        }
        (Method::GET | Method::POST, Some(Endpoint::EndSession)) => {
            state.lock().expect("lock").end_session_requests += 1;
            http_server::response(200, "text/html", "<p>Signed out of the BadOp.</p>")
        }
        (Method::POST, Some(Endpoint::Revocation)) => {
            let body = http_server::read_body(req.into_body()).await;
            let params = parse_form(&String::from_utf8_lossy(&body));
            revoke(
                auth_header.as_deref(),
                &params,
                &mut state.lock().expect("lock"),
            )
        }
        _ => http_server::response(404, "text/plain", "not found"),
    }
}

fn discovery(s: &State) -> Value {
    let l = &s.layout;
    let base = &s.base;
    let issuer = match &l.discovery_issuer {
        Some(template) => template.replace("{base}", base),
        None => s.issuer.clone(),
    };
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}{}", l.authorize),
        "token_endpoint": format!("{base}{}", l.token),
        "userinfo_endpoint": format!("{base}{}", l.userinfo),
        "jwks_uri": format!("{base}{}", l.jwks),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": s.auth_methods,
        "code_challenge_methods_supported": ["S256", "plain"],
        "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email",
            "email_verified", "name", "given_name", "family_name", "preferred_username", "groups"],
    });
    if let Some(p) = &l.end_session {
        doc["end_session_endpoint"] = json!(format!("{base}{p}"));
    }
    if let Some(p) = &l.revocation {
        doc["revocation_endpoint"] = json!(format!("{base}{p}"));
    }
    if l.iss_param {
        doc["authorization_response_iss_parameter_supported"] = json!(true);
    }
    doc
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
        Some("https://evil.example.com".to_owned())
    } else if s.layout.iss_param {
        Some(s.issuer.clone())
    } else {
        None
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
        if let Some(iss) = &response_iss {
            q.append_pair("iss", iss);
        }
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

/// Client authentication shared by the token and revocation endpoints: `Some(refusal)` when
/// the client did not authenticate.
fn authenticate(
    auth_header: Option<&str>,
    params: &[(String, String)],
    s: &mut State,
) -> Option<Response<Body>> {
    let Some((id, secret, method)) = client_credentials(auth_header, params) else {
        return Some(oauth_error(
            s,
            401,
            "invalid_client",
            "no client authentication".into(),
        ));
    };
    if !s.auth_methods.iter().any(|m| m == method) {
        return Some(oauth_error(
            s,
            401,
            "invalid_client",
            format!("{method} is not a supported client authentication method"),
        ));
    }
    if id != s.client_id || secret != s.client_secret {
        return Some(oauth_error(
            s,
            401,
            "invalid_client",
            format!("wrong client credentials for {id}"),
        ));
    }
    s.token_auth_methods.push(method.to_owned());
    None
}

fn token(auth_header: Option<&str>, params: &[(String, String)], s: &mut State) -> Response<Body> {
    s.token_requests += 1;
    s.token_params.push(
        params
            .iter()
            .filter(|(n, _)| n != "client_secret")
            .cloned()
            .collect(),
    );
    if let Some(refused) = authenticate(auth_header, params, s) {
        return refused;
    }
    match param(params, "grant_type") {
        Some("authorization_code") => code_grant(params, s),
        Some("refresh_token") => refresh_grant(params, s),
        _ => oauth_error(s, 400, "unsupported_grant_type", "grant_type".into()),
    }
}

fn code_grant(params: &[(String, String)], s: &mut State) -> Response<Body> {
    let Some(pending) = param(params, "code").and_then(|c| s.codes.remove(c)) else {
        return oauth_error(
            s,
            400,
            "invalid_grant",
            "unknown or already used code".into(),
        );
    };
    if param(params, "redirect_uri") != Some(pending.redirect_uri.as_str()) {
        return oauth_error(s, 400, "invalid_grant", "redirect_uri differs".into());
    }
    if let Err(why) = check_pkce(&pending, param(params, "code_verifier")) {
        return oauth_error(s, 400, "invalid_grant", why);
    }

    let id_token = id_token(s, pending.nonce.as_deref());
    let expires_in = s.expires_in;
    let access_token = new_access_token(s, expires_in);
    s.issued.push(id_token.clone());
    s.id_tokens.push(id_token.clone());
    if s.mode == Mode::UnknownKidThenRotate {
        let rotated = s.key("rotated");
        if !s.served.iter().any(|k| k.kid == rotated.kid) {
            s.served.push(rotated);
        }
    }
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "openid profile email",
        "id_token": id_token,
    });
    if s.refresh_tokens {
        body["refresh_token"] = json!(new_refresh_token(s));
    }
    http_server::json_response(200, &body)
}

fn refresh_grant(params: &[(String, String)], s: &mut State) -> Response<Body> {
    s.refresh_requests += 1;
    let presented = param(params, "refresh_token")
        .unwrap_or_default()
        .to_owned();
    s.presented_refresh_tokens.push(presented.clone());
    match s.refresh_failure {
        Some(RefreshFailure::InvalidGrant) => {
            return oauth_error(s, 400, "invalid_grant", "refresh refused (test)".into())
        }
        Some(RefreshFailure::ServerError) => {
            return oauth_error(s, 500, "server_error", "refresh failed (test)".into())
        }
        None => {}
    }
    match s.live_refresh_tokens.get(&presented).copied() {
        None => {
            return oauth_error(s, 400, "invalid_grant", "unknown refresh token".into());
        }
        Some(false) => {
            s.reused_refresh_tokens += 1;
            return oauth_error(
                s,
                400,
                "invalid_grant",
                "refresh token reused after rotation".into(),
            );
        }
        Some(true) => {}
    }
    let expires_in = s.refresh_expires_in;
    let access_token = new_access_token(s, expires_in);
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "openid profile email",
    });
    if s.rotate_refresh_tokens {
        s.live_refresh_tokens.insert(presented, false);
        body["refresh_token"] = json!(new_refresh_token(s));
    }
    http_server::json_response(200, &body)
}

fn new_refresh_token(s: &mut State) -> String {
    let token = format!("rt-{}", random_string(40));
    s.live_refresh_tokens.insert(token.clone(), true);
    s.issued_refresh_tokens.push(token.clone());
    s.issued.push(token.clone());
    token
}

/// An opaque access token, or a JWT one (Keycloak) when asked for; userinfo accepts it.
fn new_access_token(s: &mut State, expires_in: u64) -> String {
    let token = if s.jwt_access_tokens {
        let t = now();
        let mut claims = s.claims_for(Target::AccessToken);
        claims.insert("iss".into(), json!(s.issuer));
        claims.insert("aud".into(), json!("account"));
        claims.insert("azp".into(), json!(s.client_id));
        claims.insert("typ".into(), json!("Bearer"));
        claims.insert("iat".into(), json!(t));
        claims.insert("exp".into(), json!(t + expires_in as i64));
        claims.insert("jti".into(), json!(random_string(16)));
        claims.insert("scope".into(), json!("openid profile email"));
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": s.primary.kid });
        match s.access_token_signer {
            Signer::Primary => s.primary.sign(&header, &Value::Object(claims)),
            Signer::Other => s.key("other").sign(&header, &Value::Object(claims)),
            Signer::None => format!(
                "{}.{}.",
                b64url(
                    json!({ "alg": "none", "typ": "JWT" })
                        .to_string()
                        .as_bytes()
                ),
                b64url(Value::Object(claims).to_string().as_bytes())
            ),
        }
    } else {
        random_string(40)
    };
    let userinfo_sub = if s.mode == Mode::UserinfoSubMismatch {
        "mallory".to_owned()
    } else {
        s.user.sub.clone()
    };
    s.access_tokens.insert(token.clone(), userinfo_sub);
    s.issued.push(token.clone());
    token
}

fn revoke(auth_header: Option<&str>, params: &[(String, String)], s: &mut State) -> Response<Body> {
    if let Some(refused) = authenticate(auth_header, params, s) {
        return refused;
    }
    let token = param(params, "token").unwrap_or_default().to_owned();
    let hint = param(params, "token_type_hint")
        .unwrap_or_default()
        .to_owned();
    s.live_refresh_tokens.remove(&token);
    s.access_tokens.remove(&token);
    s.revocations.push((hint, token));
    http_server::response(200, "text/plain", "")
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
    let mut claims = s.claims_for(Target::IdToken);
    claims.insert("iss".into(), json!(s.issuer));
    claims.insert("aud".into(), json!(s.client_id));
    claims.insert("iat".into(), json!(t));
    claims.insert("auth_time".into(), json!(t));
    claims.insert("exp".into(), json!(t + 600));
    if let Some(n) = nonce {
        claims.insert("nonce".into(), json!(n));
    }
    if s.with_sid {
        let sid = random_string(16);
        s.sids.push(sid.clone());
        claims.insert("sid".into(), json!(sid));
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
        Mode::IssWithoutScheme => {
            let bare = s.issuer.split_once("://").map_or("", |(_, rest)| rest);
            claims.insert("iss".into(), json!(bare));
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
    let mut claims = s.claims_for(Target::Userinfo);
    claims.insert("sub".into(), json!(sub));
    http_server::json_response(200, &Value::Object(claims))
}
