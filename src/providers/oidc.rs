//! One OIDC connection: discovery, the authorization request, the code exchange, token
//! verification, the userinfo call and claim mapping into an [`Identity`].

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Digest as _;
use url::Url;

use super::id_token::{self, Expectations, TokenError};
use super::jwks::{JwksCache, JwksError};
use crate::config::{OidcProviderConfig, PkceMethod, Preset};
use crate::identity::{map_claims, Identity, MappingRules, Refusal};
use crate::session::pending::PendingLogin;

/// Why a login through this connection failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider's discovery document is unusable: {0}")]
    Discovery(String),
    #[error("the connection is not ready: {0}")]
    NotReady(&'static str),
    #[error("the identity provider refused the login: {error}")]
    IdpError {
        error: String,
        description: Option<String>,
    },
    #[error("the token endpoint refused the code: {0}")]
    TokenRejected(String),
    #[error("the ID token was rejected: {0}")]
    Token(#[from] TokenError),
    #[error("the access token was rejected: {0}")]
    AccessToken(TokenError),
    #[error("the signing keys could not be used: {0}")]
    Jwks(#[from] JwksError),
    #[error("the userinfo answer was rejected: {0}")]
    Userinfo(String),
    #[error("{0}")]
    Refused(#[from] Refusal),
}

/// Endpoints in use: discovery results with explicit settings on top.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub end_session_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    pub token_auth_methods: Vec<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: Option<Url>,
    token_endpoint: Option<Url>,
    userinfo_endpoint: Option<Url>,
    jwks_uri: Option<Url>,
    end_session_endpoint: Option<Url>,
    revocation_endpoint: Option<Url>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

/// Entra ID's issuer placeholder in multi-tenant discovery documents.
const TENANT_TEMPLATE: &str = "{tenantid}";

/// Entra ID signals "too many groups for the token" with `_claim_names.groups`.
fn has_group_overage(claims: &Map<String, Value>) -> bool {
    claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|n| n.contains_key("groups"))
        && !claims.get("groups").is_some_and(Value::is_array)
}

/// New tokens from a refresh.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access_token: Option<String>,
    /// A rotated refresh token, when the provider rotates them.
    pub refresh_token: Option<String>,
    pub access_expires_at: Option<u64>,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginResult {
    pub identity: Identity,
    /// Every claim the mapping saw (ID token, plus userinfo or access token when used).
    pub claims: Value,
    pub id_token: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub access_expires_at: Option<u64>,
}

pub struct OidcProvider {
    pub config: OidcProviderConfig,
    pub redirect_uri: Url,
    /// This build of the connection's settings (see [`super::retired`]).
    pub generation: u64,
    metadata: ArcSwapOption<Metadata>,
    /// The explicit settings alone make the connection usable ([`configured_metadata`]):
    /// it is ready without discovery, which then only adds what the settings leave out.
    standalone: bool,
    http: reqwest::Client,
    jwks: Arc<JwksCache>,
}

impl OidcProvider {
    pub fn new(
        config: OidcProviderConfig,
        public_url: &Url,
        http: reqwest::Client,
        jwks: Arc<JwksCache>,
    ) -> Result<Self, OidcError> {
        let redirect_uri = public_url
            .join(&format!("callback_{}", config.id))
            .map_err(|_| OidcError::Discovery("cannot build the callback URL".into()))?;
        // Here, not at start-up only: a reload or the admin plane builds connections too.
        if !config.verify_token_signature {
            tracing::warn!(provider = %config.id, "verify_token_signature is off: ID-token signatures are NOT checked (insecure)");
        }
        let configured = configured_metadata(&config).map(Arc::new);
        let provider = OidcProvider {
            generation: super::retired::next_generation(),
            standalone: configured.is_some(),
            metadata: ArcSwapOption::new(configured),
            config,
            redirect_uri,
            http,
            jwks,
        };
        Ok(provider)
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    pub fn metadata(&self) -> Option<Arc<Metadata>> {
        self.metadata.load_full()
    }

    pub fn is_ready(&self) -> bool {
        self.metadata.load().is_some()
    }

    /// Whether the explicit endpoints stand alone (no discovery document is needed).
    pub fn is_standalone(&self) -> bool {
        self.standalone
    }

    /// The discovery URL: `issuer`, or Keycloak's `base_url`.
    fn discovery_base(&self) -> Option<&Url> {
        match self.config.preset {
            Preset::Keycloak => self
                .config
                .base_url
                .as_ref()
                .or(self.config.issuer.as_ref()),
            _ => self
                .config
                .issuer
                .as_ref()
                .or(self.config.base_url.as_ref()),
        }
    }

    /// Run discovery and keep the result; explicit endpoints win. Without `issuer`/`base_url`,
    /// the issuer is found from `authorize_url`: each parent path of it is tried, and a document
    /// counts only when its `authorization_endpoint` is exactly the configured one.
    pub async fn discover(&self) -> Result<Arc<Metadata>, OidcError> {
        let doc = match self.discovery_base() {
            Some(base) => self.fetch_discovery(base.as_str(), true).await?,
            None => self.discover_from_endpoints().await?,
        };
        let metadata = Arc::new(merge(&self.config, doc)?);
        self.metadata.store(Some(metadata.clone()));
        if self.config.debug {
            tracing::info!(provider = %self.config.id, ?metadata, "discovery done");
        }
        Ok(metadata)
    }

    /// Fetch the discovery document again (periodic refresh, or the first look for a
    /// standalone connection). A failure keeps the metadata in use.
    pub async fn refresh_discovery(&self) {
        match self.discover().await {
            Ok(_) => tracing::debug!(provider = %self.config.id, "discovery refreshed"),
            Err(e) if self.standalone => {
                tracing::debug!(provider = %self.config.id, error = %e, "no usable discovery document; the configured endpoints are used alone")
            }
            Err(e) => {
                tracing::warn!(provider = %self.config.id, error = %e, keeping_last_good = self.is_ready(), "discovery refresh failed")
            }
        }
    }

    async fn discover_from_endpoints(&self) -> Result<Discovery, OidcError> {
        let authorize = self
            .config
            .endpoints
            .authorize_url
            .as_ref()
            .ok_or(OidcError::NotReady("no issuer and no authorize_url"))?;
        let mut candidate = authorize.clone();
        candidate.set_query(None);
        loop {
            let path = candidate.path().trim_end_matches('/').to_owned();
            let Some((parent, _)) = path.rsplit_once('/') else {
                break;
            };
            candidate.set_path(parent);
            if let Ok(doc) = self.fetch_discovery(candidate.as_str(), false).await {
                if doc.authorization_endpoint.as_ref() == Some(authorize) {
                    return Ok(doc);
                }
            }
            if parent.is_empty() {
                break;
            }
        }
        Err(OidcError::Discovery(
            "no discovery document matches authorize_url; set `issuer`".into(),
        ))
    }

    async fn fetch_discovery(
        &self,
        base: &str,
        check_issuer: bool,
    ) -> Result<Discovery, OidcError> {
        let base = base.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(super::describe_http_error(&e)))?;
        if !resp.status().is_success() {
            return Err(OidcError::Discovery(format!(
                "{url} answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let doc: Discovery = resp
            .json()
            .await
            .map_err(|_| OidcError::Discovery(format!("{url} is not a JSON discovery document")))?;
        // Entra's multi-tenant documents (`common`, `organizations`) carry a `{tenantid}`
        // template; the token's `tid` fills it in at verification.
        let templated = self.config.preset == Preset::Azure && doc.issuer.contains(TENANT_TEMPLATE);
        if check_issuer && !templated && doc.issuer.trim_end_matches('/') != base {
            return Err(OidcError::Discovery(format!(
                "issuer {:?} in the discovery document does not match {base:?}",
                doc.issuer
            )));
        }
        Ok(doc)
    }

    async fn ready_metadata(&self) -> Result<Arc<Metadata>, OidcError> {
        match self.metadata() {
            Some(m) => Ok(m),
            None => self.discover().await,
        }
    }

    /// The URL the browser is sent to.
    pub async fn authorization_url(&self, pending: &PendingLogin) -> Result<Url, OidcError> {
        let meta = self.ready_metadata().await?;
        let mut url = meta.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", self.redirect_uri.as_str())
                .append_pair("scope", &self.config.scopes.join(" "))
                .append_pair("state", &pending.state)
                .append_pair("nonce", &pending.nonce);
            if let [domain] = self.config.hosted_domain.as_slice() {
                // Google: pre-select the account domain (the `hd` claim is still checked).
                q.append_pair("hd", domain);
            }
            if let Some(verifier) = &pending.pkce_verifier {
                match self.config.code_challenge_method {
                    PkceMethod::S256 => {
                        q.append_pair("code_challenge", &pkce_s256(verifier))
                            .append_pair("code_challenge_method", "S256");
                    }
                    PkceMethod::Plain => {
                        q.append_pair("code_challenge", verifier)
                            .append_pair("code_challenge_method", "plain");
                    }
                    PkceMethod::None => {}
                }
            }
        }
        Ok(url)
    }

    /// Check the RFC 9207 `iss` response parameter.
    pub fn check_response_issuer(&self, iss: &str) -> Result<(), OidcError> {
        let expected = self
            .metadata()
            .map(|m| m.issuer.clone())
            .unwrap_or_default();
        if iss == expected {
            Ok(())
        } else {
            Err(OidcError::Token(TokenError::WrongIssuer {
                expected,
                found: iss.to_owned(),
            }))
        }
    }

    /// Exchange the code, verify everything and map the identity.
    pub async fn complete(
        &self,
        code: &str,
        pending: &PendingLogin,
        now: u64,
    ) -> Result<LoginResult, OidcError> {
        let meta = self.ready_metadata().await?;
        let tokens = self
            .exchange(&meta, code, pending.pkce_verifier.as_deref())
            .await?;
        let id_token = tokens.id_token.ok_or(OidcError::TokenRejected(
            "no id_token in the token response".into(),
        ))?;
        let want = Expectations {
            issuer: &meta.issuer,
            client_id: &self.config.client_id,
            nonce: Some(&pending.nonce),
            check_audience: true,
            skew_secs: self.config.clock_skew.as_secs(),
            now,
        };
        let mut claims = self.verify(&meta, &id_token, &want).await?;
        let sub = claims.get("sub").cloned();
        if reads_access_token(&self.config) {
            if let Some(at) = tokens.access_token.as_deref() {
                let want_at = Expectations {
                    nonce: None,
                    check_audience: false,
                    ..want
                };
                let at_claims = self
                    .verify(&meta, at, &want_at)
                    .await
                    .map_err(|e| match e {
                        OidcError::Token(t) => OidcError::AccessToken(t),
                        other => other,
                    })?;
                if at_claims.get("sub") != sub.as_ref() {
                    return Err(OidcError::AccessToken(TokenError::MissingClaim("sub")));
                }
                merge_claims(&mut claims, at_claims);
            }
        } else if reads_userinfo(&self.config) {
            let access = tokens
                .access_token
                .as_deref()
                .ok_or(OidcError::Userinfo("no access token".into()))?;
            let info = self.userinfo(&meta, access).await?;
            if info.get("sub") != sub.as_ref() {
                return Err(OidcError::Userinfo(
                    "the userinfo sub differs from the ID token sub".into(),
                ));
            }
            merge_claims(&mut claims, info);
        }
        if has_group_overage(&claims) {
            let access = tokens.access_token.as_deref().ok_or(OidcError::Userinfo(
                "group overage without an access token".into(),
            ))?;
            let groups = self.graph_groups(access).await?;
            claims.insert(self.config.groups.claim.clone(), Value::from(groups));
        }
        let claims = Value::Object(claims);
        if self.config.debug {
            // What the mapping sees: the names to put in `claims.*` and `groups.claim`.
            let received = claims_for_log(&claims);
            tracing::info!(provider = %self.config.id, claims = %received, "claims received");
        }
        let rules = MappingRules {
            provider: &self.config.id,
            claims: &self.config.claims,
            groups: &self.config.groups,
            admin_role: self.config.admin_role.as_deref(),
            client_id: &self.config.client_id,
        };
        let identity = map_claims(&claims, &rules)?;
        if self.config.debug {
            tracing::info!(provider = %self.config.id, user = %identity.user, groups = ?identity.groups, admin = identity.admin, "login verified");
        }
        Ok(LoginResult {
            identity,
            claims,
            id_token: Some(id_token),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
        })
    }

    async fn verify(
        &self,
        meta: &Metadata,
        token: &str,
        want: &Expectations<'_>,
    ) -> Result<Map<String, Value>, OidcError> {
        let claims = if self.config.verify_token_signature {
            let header = id_token::header(token, &self.config.allowed_algs)?;
            let jwks = meta
                .jwks_uri
                .as_ref()
                .ok_or(OidcError::NotReady("no jwks_uri"))?;
            let key = match self.jwks.key(jwks, header.kid.as_deref(), header.alg).await {
                Ok(k) => k,
                Err(JwksError::UnknownKey { kid, .. }) => {
                    return Err(TokenError::UnknownKey(kid).into())
                }
                Err(e) => return Err(e.into()),
            };
            id_token::verify_signature(token, header.alg, &key.key)?
        } else {
            id_token::insecure_claims(token)?
        };
        let issuer = self.expected_issuer(&claims, want.issuer);
        id_token::check_claims(
            &claims,
            &Expectations {
                issuer: &issuer,
                ..*want
            },
        )?;
        Ok(claims)
    }

    /// The `iss` this token must carry: Entra's `{tenantid}` template filled from `tid`; for
    /// Google also the issuer without its scheme (`accounts.google.com`), which Google documents
    /// as the other form of its issuer. Anything else must match exactly.
    fn expected_issuer<'a>(&self, claims: &Map<String, Value>, issuer: &'a str) -> Cow<'a, str> {
        if issuer.contains(TENANT_TEMPLATE) {
            let tid = claims
                .get("tid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Cow::Owned(issuer.replace(TENANT_TEMPLATE, tid));
        }
        let schemeless = issuer.split_once("://").map(|(_, rest)| rest);
        let iss = claims.get("iss").and_then(Value::as_str);
        match schemeless {
            Some(s) if self.config.preset == Preset::Google && iss == Some(s) => Cow::Borrowed(s),
            _ => Cow::Borrowed(issuer),
        }
    }

    async fn exchange(
        &self,
        meta: &Metadata,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<TokenResponse, OidcError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
        ];
        if let Some(v) = verifier.filter(|_| self.config.code_challenge_method != PkceMethod::None)
        {
            form.push(("code_verifier", v));
        }
        self.token_request(meta, form).await
    }

    /// POST to an endpoint with client authentication: `client_secret_basic`, or
    /// `client_secret_post` when the provider supports only that; public clients send their id.
    async fn client_post(
        &self,
        url: &Url,
        meta: &Metadata,
        mut form: Vec<(&str, &str)>,
    ) -> Result<(reqwest::StatusCode, bytes::Bytes), OidcError> {
        let mut req = self
            .http
            .post(url.clone())
            .header("accept", "application/json");
        let secret = self
            .config
            .client_secret
            .as_ref()
            .map(|s| s.expose().as_str());
        let methods = &meta.token_auth_methods;
        let use_post = !methods.is_empty()
            && !methods.iter().any(|m| m == "client_secret_basic")
            && methods.iter().any(|m| m == "client_secret_post");
        match secret {
            Some(secret) if !use_post => {
                req = req.header("authorization", basic_auth(&self.config.client_id, secret));
            }
            Some(secret) => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", secret));
            }
            None => form.push(("client_id", &self.config.client_id)),
        }
        let unreachable =
            |e: reqwest::Error| OidcError::Unreachable(super::describe_http_error(&e));
        let resp = req.form(&form).send().await.map_err(unreachable)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(unreachable)?;
        Ok((status, body))
    }

    async fn token_request(
        &self,
        meta: &Metadata,
        form: Vec<(&str, &str)>,
    ) -> Result<TokenResponse, OidcError> {
        let (status, body) = self.client_post(&meta.token_endpoint, meta, form).await?;
        if self.config.debug {
            tracing::info!(provider = %self.config.id, endpoint = %meta.token_endpoint, status = status.as_u16(), "token endpoint answered");
        }
        if status.is_server_error() {
            return Err(OidcError::Unreachable(format!(
                "the token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            let code = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            return Err(OidcError::TokenRejected(code));
        }
        serde_json::from_slice(&body)
            .map_err(|_| OidcError::TokenRejected("the token response is not JSON".into()))
    }

    /// Use a refresh token. `TokenRejected("invalid_grant")` means the session must end.
    pub async fn refresh(&self, refresh_token: &str, now: u64) -> Result<Refreshed, OidcError> {
        let meta = self.ready_metadata().await?;
        let form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let tokens = self.token_request(&meta, form).await?;
        if self.config.debug {
            tracing::info!(provider = %self.config.id, rotated = tokens.refresh_token.is_some(), "tokens refreshed");
        }
        Ok(Refreshed {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
        })
    }

    /// Entra group overage: the user's group ids from Microsoft Graph (`graph_url`).
    async fn graph_groups(&self, access_token: &str) -> Result<Vec<String>, OidcError> {
        let base = self
            .config
            .graph_url
            .as_ref()
            .ok_or(OidcError::Userinfo("group overage but no graph_url".into()))?;
        let url = format!(
            "{}/v1.0/me/getMemberGroups",
            base.as_str().trim_end_matches('/')
        );
        let resp = self
            .http
            .post(&url)
            .bearer_auth(access_token)
            .json(&serde_json::json!({"securityEnabledOnly": false}))
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(super::describe_http_error(&e)))?;
        if self.config.debug {
            tracing::info!(provider = %self.config.id, status = resp.status().as_u16(), "Microsoft Graph answered (group overage)");
        }
        if !resp.status().is_success() {
            return Err(OidcError::Userinfo(format!(
                "Microsoft Graph answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|_| OidcError::Userinfo("Microsoft Graph answer is not JSON".into()))?;
        let groups = body
            .get("value")
            .and_then(Value::as_array)
            .ok_or(OidcError::Userinfo(
                "Microsoft Graph answer has no value list".into(),
            ))?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        tracing::debug!(provider = %self.config.id, "group overage resolved through Microsoft Graph");
        Ok(groups)
    }

    /// Revoke a token at `revocation_url` (RFC 7009), best effort: failures are logged.
    pub async fn revoke(&self, token: &str, hint: &str) {
        let Some(meta) = self.metadata() else { return };
        let Some(url) = meta.revocation_endpoint.clone() else {
            return;
        };
        let form = vec![("token", token), ("token_type_hint", hint)];
        match self.client_post(&url, &meta, form).await {
            Ok((status, _)) if status.is_success() => {
                tracing::debug!(provider = %self.config.id, hint, "token revoked");
            }
            Ok((status, _)) => {
                tracing::warn!(provider = %self.config.id, hint, status = status.as_u16(), "token revocation refused");
            }
            Err(e) => {
                tracing::warn!(provider = %self.config.id, hint, error = %e, "token revocation failed")
            }
        }
    }

    async fn userinfo(
        &self,
        meta: &Metadata,
        access_token: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let url = meta
            .userinfo_endpoint
            .clone()
            .ok_or(OidcError::Userinfo("no userinfo endpoint".into()))?;
        let resp = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(super::describe_http_error(&e)))?;
        if self.config.debug {
            tracing::info!(provider = %self.config.id, status = resp.status().as_u16(), "userinfo endpoint answered");
        }
        if !resp.status().is_success() {
            return Err(OidcError::Userinfo(format!(
                "HTTP {}",
                resp.status().as_u16()
            )));
        }
        resp.json()
            .await
            .map_err(|_| OidcError::Userinfo("the answer is not a JSON object".into()))
    }
}

/// Keycloak's `get_info_from_access_token`: claims from the verified access-token JWT.
fn reads_access_token(c: &OidcProviderConfig) -> bool {
    c.preset == Preset::Keycloak && c.get_info_from_access_token
}

/// Claims from the userinfo endpoint: `user_info_from_id_token: false`, or Keycloak with
/// `get_info_from_access_token: false`.
fn reads_userinfo(c: &OidcProviderConfig) -> bool {
    !reads_access_token(c) && (!c.user_info_from_id_token || c.preset == Preset::Keycloak)
}

/// Metadata from the settings alone, when they are enough for a login: `issuer`, the
/// authorization and token endpoints, `jwks_uri` when signatures are verified, and
/// `userinfo_url` when the claims come from the userinfo endpoint.
fn configured_metadata(c: &OidcProviderConfig) -> Option<Metadata> {
    let e = &c.endpoints;
    let jwks_ok = e.jwks_uri.is_some() || !c.verify_token_signature;
    let userinfo_ok = e.userinfo_url.is_some() || !reads_userinfo(c);
    if !(jwks_ok && userinfo_ok) {
        return None;
    }
    Some(Metadata {
        issuer: c.issuer_text.clone()?,
        authorization_endpoint: e.authorize_url.clone()?,
        token_endpoint: e.access_token_url.clone()?,
        userinfo_endpoint: e.userinfo_url.clone(),
        jwks_uri: e.jwks_uri.clone(),
        end_session_endpoint: e.end_session_url.clone(),
        revocation_endpoint: e.revocation_url.clone(),
        token_auth_methods: Vec::new(),
    })
}

fn merge(c: &OidcProviderConfig, d: Discovery) -> Result<Metadata, OidcError> {
    let e = &c.endpoints;
    let missing =
        |what: &str| OidcError::Discovery(format!("no {what} in discovery or configuration"));
    Ok(Metadata {
        authorization_endpoint: e
            .authorize_url
            .clone()
            .or(d.authorization_endpoint)
            .ok_or_else(|| missing("authorization_endpoint"))?,
        token_endpoint: e
            .access_token_url
            .clone()
            .or(d.token_endpoint)
            .ok_or_else(|| missing("token_endpoint"))?,
        userinfo_endpoint: e.userinfo_url.clone().or(d.userinfo_endpoint),
        jwks_uri: e.jwks_uri.clone().or(d.jwks_uri),
        end_session_endpoint: e.end_session_url.clone().or(d.end_session_endpoint),
        revocation_endpoint: e.revocation_url.clone().or(d.revocation_endpoint),
        token_auth_methods: d.token_endpoint_auth_methods_supported,
        issuer: d.issuer,
    })
}

/// Claims for a debug log line: values that could be replayed (embedded tokens, hashes of
/// them, the nonce) are replaced, the rest is shown so that `claims.*` can be set right.
pub fn claims_for_log(claims: &Value) -> Value {
    const HIDDEN: &[&str] = &["nonce", "at_hash", "c_hash", "s_hash", "sid", "jti"];
    match claims {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let hide = HIDDEN.contains(&k.as_str())
                        || k.contains("token")
                        || v.as_str().is_some_and(looks_like_a_token);
                    let shown = if hide {
                        Value::from("[redacted]")
                    } else {
                        claims_for_log(v)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(claims_for_log).collect()),
        other => other.clone(),
    }
}

/// A JWT/JWE-shaped string, or a long opaque one.
fn looks_like_a_token(s: &str) -> bool {
    s.len() > 200 || (s.len() > 40 && s.matches('.').count() >= 2 && !s.contains(' '))
}

fn merge_claims(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        into.insert(k, v);
    }
}

/// RFC 7636 S256 challenge.
pub fn pkce_s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// RFC 6749 section 2.3.1: form-encode id and secret, then Basic.
fn basic_auth(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(client_id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_example() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn basic_auth_form_encodes() {
        assert_eq!(
            basic_auth("a b", "p:w"),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("a+b:p%3Aw")
            )
        );
    }

    #[test]
    fn claims_for_log_hides_tokens_and_nonces_and_keeps_the_rest() {
        let jwt = format!("{}.{}.{}", "a".repeat(20), "b".repeat(30), "c".repeat(20));
        let claims = serde_json::json!({
            "email": "a@example.com",
            "nonce": "n-123",
            "at_hash": "h",
            "groups": ["x"],
            "nested": {"upstream_token": "t", "id": jwt},
            "email_verified": true,
        });
        let shown = claims_for_log(&claims);
        assert_eq!(shown["email"], "a@example.com");
        assert_eq!(shown["groups"], serde_json::json!(["x"]));
        assert_eq!(shown["email_verified"], true);
        for hidden in [
            &shown["nonce"],
            &shown["at_hash"],
            &shown["nested"]["upstream_token"],
            &shown["nested"]["id"],
        ] {
            assert_eq!(hidden, "[redacted]");
        }
    }
}
