//! One SAML 2.0 connection (service-provider side): IdP metadata (from config, or fetched from
//! a URL and refreshed, keeping the last good copy), the AuthnRequest redirect, response
//! verification through the strict wrapper in [`verify`], attribute mapping into an
//! [`Identity`] with the shared claim code, the assertion replay cache, SP metadata and
//! SP-initiated Single Logout.

pub mod metadata;
pub mod request;
pub mod structure;
pub mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use openssl::pkey::{PKey, Private};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{IdpMetadataSource, SamlProviderConfig};
use crate::identity::{map_claims, Identity, MappingRules, Refusal};
use crate::session::{Once, PendingLogin, Session, UseOnce};
use metadata::{IdpMetadata, MetadataError};
use verify::{Expectations, ResponseError, VerifiedAssertion};

/// Largest IdP metadata document fetched from a URL.
const MAX_METADATA_BYTES: usize = 4 * 1024 * 1024;

/// Why a SAML login (or setting up a connection) failed.
#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    #[error("the identity provider's metadata could not be fetched: {0}")]
    Unreachable(String),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("the connection is not ready: the IdP metadata has not been loaded yet")]
    NotReady,
    #[error("{0}")]
    Message(String),
    #[error("the SP key or certificate is unusable: {0}")]
    Key(String),
    #[error(transparent)]
    Response(#[from] ResponseError),
    #[error("{0}")]
    Refused(#[from] Refusal),
}

impl SamlError {
    /// The HTTP status for the error page.
    pub fn status(&self) -> u16 {
        match self {
            SamlError::Unreachable(_) | SamlError::NotReady | SamlError::Metadata(_) => 502,
            SamlError::Message(_) | SamlError::Key(_) => 500,
            SamlError::Response(e) => e.status(),
            SamlError::Refused(_) => 403,
        }
    }
}

/// A verified SAML login.
#[derive(Debug, Clone)]
pub struct SamlLogin {
    pub identity: Identity,
    /// The attributes as claims (`Name` and `FriendlyName` keys) plus `nameid`.
    pub claims: Value,
    pub assertion: VerifiedAssertion,
}

pub struct SamlProvider {
    pub config: SamlProviderConfig,
    /// Our SP entity id.
    pub entity_id: String,
    /// `<public_url>/callback_<id>`: ACS and SLO return.
    pub acs_url: Url,
    /// This build of the connection's settings (see [`super::retired`]).
    pub generation: u64,
    metadata: ArcSwapOption<IdpMetadata>,
    /// Unix seconds of the last metadata fetch attempt that succeeded.
    fetched_at: AtomicU64,
    key: Option<PKey<Private>>,
    cert_der: Option<Vec<u8>>,
    http: reqwest::Client,
}

impl SamlProvider {
    pub fn new(
        config: SamlProviderConfig,
        public_url: &Url,
        http: reqwest::Client,
    ) -> Result<Self, SamlError> {
        let acs_url = public_url
            .join(&format!("callback_{}", config.id))
            .map_err(|_| SamlError::Message("cannot build the ACS URL".into()))?;
        let entity_id = match &config.entity_id {
            Some(e) => e.clone(),
            None => public_url
                .join(&format!("_sso/saml/{}/metadata", config.id))
                .map_err(|_| SamlError::Message("cannot build the entity id".into()))?
                .to_string(),
        };
        let (key, cert_der) = signing_material(&config)?;
        if config.insecure_allow_sha1 {
            tracing::warn!(provider = %config.id, "insecure_allow_sha1 is on: SHA-1 XML signatures are accepted (insecure)");
        }
        Ok(SamlProvider {
            generation: super::retired::next_generation(),
            metadata: ArcSwapOption::new(config.idp_metadata.clone()),
            fetched_at: AtomicU64::new(0),
            config,
            entity_id,
            acs_url,
            key,
            cert_der,
            http,
        })
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn metadata(&self) -> Option<Arc<IdpMetadata>> {
        self.metadata.load_full()
    }

    /// Ready once the IdP metadata is loaded.
    pub fn is_ready(&self) -> bool {
        self.metadata.load().is_some()
    }

    /// The metadata URL, when the metadata comes from one.
    pub fn metadata_url(&self) -> Option<&Url> {
        match &self.config.idp_metadata_source {
            IdpMetadataSource::Url(url) => Some(url),
            _ => None,
        }
    }

    /// Whether a URL-sourced metadata document is due for (re)fetching at `now`.
    pub fn metadata_due(&self, now: u64) -> bool {
        self.metadata_url().is_some()
            && (!self.is_ready()
                || now.saturating_sub(self.fetched_at.load(Ordering::Relaxed))
                    >= self.config.idp_metadata_refresh.as_secs())
    }

    /// Fetch the metadata from its URL. On failure the last good copy stays in use.
    pub async fn fetch_metadata(&self, now: u64) -> Result<(), SamlError> {
        let Some(url) = self.metadata_url() else {
            return Ok(());
        };
        let unreachable =
            |e: reqwest::Error| SamlError::Unreachable(super::describe_http_error(&e));
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            return Err(SamlError::Unreachable(format!(
                "{url} answered HTTP {status}"
            )));
        }
        let body = resp.bytes().await.map_err(unreachable)?;
        if body.len() > MAX_METADATA_BYTES {
            return Err(SamlError::Unreachable(format!(
                "{url}: the document is too large"
            )));
        }
        let text = std::str::from_utf8(&body)
            .map_err(|_| SamlError::Unreachable(format!("{url}: not UTF-8")))?;
        let parsed = metadata::parse(text)?;
        self.metadata.store(Some(Arc::new(parsed)));
        self.fetched_at.store(now, Ordering::Relaxed);
        Ok(())
    }

    fn ready_metadata(&self) -> Result<Arc<IdpMetadata>, SamlError> {
        self.metadata().ok_or(SamlError::NotReady)
    }

    /// The IdP URL for a new login: an AuthnRequest whose ID is `pending.nonce`, with
    /// `RelayState` = `pending.state` (the key of the pending cookie).
    pub fn login_url(&self, pending: &PendingLogin) -> Result<Url, SamlError> {
        let meta = self.ready_metadata()?;
        request::authn_request_url(
            &meta.sso_redirect,
            &self.entity_id,
            self.acs_url.as_str(),
            &pending.nonce,
            &pending.state,
            self.key.as_ref(),
        )
    }

    /// Verify a posted `SAMLResponse` and map the identity. `request_id` is the AuthnRequest
    /// ID of this browser's pending login, `None` for an unsolicited response; `once` remembers
    /// the assertions already used (in Redis when the session store is shared).
    pub async fn complete(
        &self,
        saml_response: &str,
        request_id: Option<&str>,
        now: u64,
        once: &UseOnce,
    ) -> Result<SamlLogin, SamlError> {
        if request_id.is_none() && !self.config.allow_idp_initiated {
            return Err(ResponseError::Unsolicited.into());
        }
        let meta = self.ready_metadata()?;
        let now_secs = i64::try_from(now).unwrap_or(i64::MAX);
        let want = Expectations {
            idp: &meta,
            sp_entity_id: &self.entity_id,
            acs_url: self.acs_url.as_str(),
            request_id,
            require_signed_assertions: self.config.require_signed_assertions,
            allow_sha1: self.config.insecure_allow_sha1,
            skew_secs: i64::try_from(self.config.clock_skew.as_secs()).unwrap_or(0),
            now: now_secs,
        };
        let assertion = verify::verify(saml_response, &want)?;
        // Single use: an assertion id is refused while the assertion could still be valid.
        let ttl = u64::try_from(assertion.valid_until.saturating_sub(now_secs)).unwrap_or(0);
        let key = format!("{}\n{}", self.config.id, assertion.id);
        match once
            .first_use(
                Once::SamlAssertion,
                key.as_bytes(),
                Duration::from_secs(ttl),
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(ResponseError::Replayed.into()),
            Err(e) => return Err(SamlError::Message(e.to_string())),
        }
        let claims = claims(&assertion, &self.config.groups.claim);
        let rules = MappingRules {
            provider: &self.config.id,
            claims: &self.config.claims,
            groups: &self.config.groups,
            admin_role: None,
            client_id: "",
        };
        let identity = map_claims(&claims, &rules)?;
        if self.config.debug {
            tracing::info!(provider = %self.config.id, user = %identity.user, groups = ?identity.groups, admin = identity.admin, "SAML login verified");
        }
        Ok(SamlLogin {
            identity,
            claims,
            assertion,
        })
    }

    /// Our SP metadata XML.
    pub fn sp_metadata(&self) -> Result<String, SamlError> {
        request::sp_metadata(
            &self.entity_id,
            self.acs_url.as_str(),
            self.cert_der.as_deref(),
            self.config.require_signed_assertions,
        )
    }

    /// The IdP Single Logout URL for a session of this connection, when the IdP has one and
    /// `idp_logout` is on. `relay_state` comes back with the LogoutResponse.
    pub fn logout_url(&self, session: &Session, relay_state: &str) -> Option<Url> {
        if !self.config.idp_logout {
            return None;
        }
        let meta = self.metadata()?;
        let slo = meta.slo_redirect.as_ref()?;
        let name_id = session.sub.as_deref()?;
        let (session_index, format) = unpack_sid(session.sid.as_deref());
        let req = request::LogoutRequest {
            slo,
            sp_entity_id: &self.entity_id,
            name_id,
            name_id_format: format,
            session_index,
            relay_state,
        };
        req.url(self.key.as_ref()).ok()
    }
}

/// The SP private key and its certificate (DER).
type SigningMaterial = (Option<PKey<Private>>, Option<Vec<u8>>);

/// The SP key and certificate (DER) when `sign_requests` is on.
fn signing_material(config: &SamlProviderConfig) -> Result<SigningMaterial, SamlError> {
    if !config.sign_requests {
        return Ok((None, None));
    }
    let key_pem = config
        .sp_private_key
        .as_ref()
        .map(|k| k.expose().as_bytes());
    let cert_pem = config.sp_certificate.as_deref().map(str::as_bytes);
    let (Some(key_pem), Some(cert_pem)) = (key_pem, cert_pem) else {
        return Err(SamlError::Key(
            "sign_requests needs sp_private_key and sp_certificate".into(),
        ));
    };
    let key = PKey::private_key_from_pem(key_pem)
        .map_err(|_| SamlError::Key("not a PEM private key".into()))?;
    let cert = openssl::x509::X509::from_pem(cert_pem)
        .and_then(|c| c.to_der())
        .map_err(|_| SamlError::Key("not a PEM certificate".into()))?;
    Ok((Some(key), Some(cert)))
}

/// The session's `sid` for a SAML session: SessionIndex and NameID Format, one per line (what
/// a LogoutRequest must repeat). `sub` holds the NameID.
pub fn pack_sid(session_index: Option<&str>, name_id_format: Option<&str>) -> Option<String> {
    if session_index.is_none() && name_id_format.is_none() {
        return None;
    }
    Some(format!(
        "{}\n{}",
        session_index.unwrap_or_default(),
        name_id_format.unwrap_or_default()
    ))
}

fn unpack_sid(sid: Option<&str>) -> (Option<&str>, Option<&str>) {
    let Some((index, format)) = sid.and_then(|s| s.split_once('\n')) else {
        return (None, None);
    };
    (
        Some(index).filter(|s| !s.is_empty()),
        Some(format).filter(|s| !s.is_empty()),
    )
}

/// The attributes as a claims object: each under its `Name` and (unless taken) its
/// `FriendlyName`; one value as a string, several as a list; the groups attribute always a
/// list. The Subject's NameID is `nameid`.
pub fn claims(a: &VerifiedAssertion, groups_claim: &str) -> Value {
    let mut collected: Vec<(String, Vec<String>)> = Vec::new();
    let add =
        |key: &str, values: &[String], collected: &mut Vec<(String, Vec<String>)>| match collected
            .iter_mut()
            .find(|(k, _)| k == key)
        {
            Some((_, existing)) => existing.extend(values.iter().cloned()),
            None => collected.push((key.to_owned(), values.to_vec())),
        };
    for (name, _, values) in &a.attributes {
        add(name, values, &mut collected);
    }
    let names: Vec<String> = collected.iter().map(|(k, _)| k.clone()).collect();
    for (_, friendly, values) in &a.attributes {
        if let Some(f) = friendly
            .as_deref()
            .filter(|f| !f.is_empty() && !names.iter().any(|n| n == f))
        {
            add(f, values, &mut collected);
        }
    }
    let mut map = Map::new();
    for (key, values) in collected {
        let value = match values.as_slice() {
            [one] if key != groups_claim => Value::String(one.clone()),
            _ => Value::Array(values.into_iter().map(Value::String).collect()),
        };
        map.insert(key, value);
    }
    map.insert(
        crate::config::SAML_NAMEID_CLAIM.to_owned(),
        Value::String(a.name_id.clone()),
    );
    Value::Object(map)
}

#[cfg(test)]
#[path = "saml/tests.rs"]
mod tests;

/// Background task: fetch URL-sourced IdP metadata until loaded (backing off), then refresh
/// each every `idp_metadata_refresh`. A failed refresh keeps the last good copy.
pub async fn metadata_refresh(app: Arc<crate::app::App>) {
    let mut delay = Duration::from_millis(250);
    loop {
        let registry = app.registry.load_full();
        let now = app.now();
        let mut failing = false;
        for p in registry.saml_all().filter(|p| p.metadata_due(now)) {
            match p.fetch_metadata(now).await {
                Ok(()) => tracing::info!(provider = %p.id(), "IdP metadata loaded"),
                Err(e) => {
                    failing = true;
                    tracing::warn!(provider = %p.id(), error = %e, keeping_last_good = p.is_ready(), "IdP metadata fetch failed; will retry");
                }
            }
        }
        let wait = if failing {
            let d = delay;
            delay = (delay * 2).min(Duration::from_secs(30));
            d
        } else {
            delay = Duration::from_millis(250);
            Duration::from_secs(5)
        };
        tokio::time::sleep(wait).await;
    }
}

/// Hook for `POST /_sso/logout`: the IdP Single Logout URL for a SAML session (with `rd` as
/// `RelayState`), or `None` for other sessions or an IdP without SLO.
pub fn logout_redirect(app: &crate::app::App, session: &Session, rd: &str) -> Option<String> {
    let registry = app.registry.load();
    let provider = registry.get_saml(&session.identity.provider)?;
    provider.logout_url(session, rd).map(String::from)
}
