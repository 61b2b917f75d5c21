//! JWKS cache (DESIGN section 6, "JWKS"): key sets cached per JWKS URI in moka. The first
//! unknown `kid` refetches at once; later refetches are limited to one per 30 s per URI and
//! are single-flight per URI. Key sets in use are re-read every `oidc_refresh_interval`
//! ([`super::key_refresh`]); cached keys keep working while the IdP is down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

/// Minimum time between two forced refetches of the same JWKS.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, thiserror::Error)]
pub enum JwksError {
    #[error("could not fetch the JWKS from {uri}: {reason}")]
    Fetch { uri: String, reason: String },
    #[error("the JWKS at {uri} answered HTTP {status}")]
    Status { uri: String, status: u16 },
    #[error("the JWKS at {uri} is not a JSON key set")]
    Malformed { uri: String },
    #[error("no key in the JWKS matches kid {kid:?} and alg {alg:?}")]
    UnknownKey { kid: Option<String>, alg: Algorithm },
}

/// One usable verification key.
pub struct VerificationKey {
    pub kid: Option<String>,
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
    family: jsonwebtoken::AlgorithmFamily,
}

/// All usable keys of one JWKS document.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<Arc<VerificationKey>>,
}

impl KeySet {
    /// Parse a JWKS document, keeping the keys that can verify signatures and skipping the rest
    /// (encryption keys, unknown key types) instead of failing the whole set.
    pub fn parse(body: &[u8]) -> Option<KeySet> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_slice(body).ok()?;
        let keys = raw
            .keys
            .into_iter()
            .filter(|k| {
                k.get("use")
                    .and_then(|u| u.as_str())
                    .is_none_or(|u| u == "sig")
            })
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter_map(|jwk| {
                let key = DecodingKey::from_jwk(&jwk).ok()?;
                let alg = jwk
                    .common
                    .key_algorithm
                    .and_then(|a| a.to_string().parse().ok());
                Some(Arc::new(VerificationKey {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    family: key_family(&jwk)?,
                    key,
                }))
            })
            .collect();
        Some(KeySet { keys })
    }

    /// The key for a token header: by `kid` when there is one, otherwise the only key of the
    /// right family. A key's own `alg`, when present, must match.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<VerificationKey>> {
        let fits =
            |k: &&Arc<VerificationKey>| k.family == alg.family() && k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(fits)
                .find(|k| k.kid.as_deref() == Some(kid))
                .cloned(),
            None => {
                let mut candidates = self.keys.iter().filter(fits);
                let first = candidates.next()?;
                candidates.next().is_none().then(|| first.clone())
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn key_family(jwk: &Jwk) -> Option<jsonwebtoken::AlgorithmFamily> {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    use jsonwebtoken::AlgorithmFamily as F;
    match jwk.algorithm {
        P::RSA(_) => Some(F::Rsa),
        P::EllipticCurve(_) => Some(F::Ec),
        P::OctetKeyPair(_) => Some(F::Ed),
        // Symmetric keys never verify ID tokens here; unknown types are skipped.
        _ => None,
    }
}

/// `result` labels of JWKS fetches, by index of [`JwksCache::fetch_counts`].
const FETCH_RESULTS: [&str; 4] = ["success", "unreachable", "http_error", "malformed"];

/// Key sets per JWKS URI, shared by every connection.
pub struct JwksCache {
    sets: moka::future::Cache<String, Arc<KeySet>>,
    /// Per JWKS URI: the lock that makes its refetches single-flight, holding the time of its
    /// last forced refetch. One slow IdP never holds up another's.
    refetches: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<Instant>>>>>,
    http: reqwest::Client,
    /// Fetches by result, in [`FETCH_RESULTS`] order (for the metrics).
    fetches: [AtomicU64; 4],
}

impl JwksCache {
    pub fn new(http: reqwest::Client) -> Self {
        JwksCache {
            sets: moka::future::Cache::builder().max_capacity(1024).build(),
            refetches: std::sync::Mutex::new(HashMap::new()),
            http,
            fetches: Default::default(),
        }
    }

    /// How many fetches ended how: `success`, `unreachable`, `http_error`, `malformed`.
    pub fn fetch_counts(&self) -> [(&'static str, u64); 4] {
        std::array::from_fn(|i| (FETCH_RESULTS[i], self.fetches[i].load(Ordering::Relaxed)))
    }

    /// Keep a pre-parsed set (tests and benchmarks use this to skip the network).
    pub async fn insert(&self, uri: &Url, set: KeySet) {
        self.sets.insert(uri.to_string(), Arc::new(set)).await;
    }

    /// The verification key for `kid`/`alg` from the JWKS at `uri`.
    pub async fn key(
        &self,
        uri: &Url,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<VerificationKey>, JwksError> {
        let name = uri.to_string();
        let set = self
            .sets
            .try_get_with(name.clone(), self.fetch(uri))
            .await
            .map_err(|e| (*e).clone())?;
        if let Some(key) = set.find(kid, alg) {
            return Ok(key);
        }
        self.refetch(uri, &set, kid, alg).await
    }

    /// The single-flight lock of one JWKS URI.
    fn lock_for(&self, name: &str) -> Arc<Mutex<Option<Instant>>> {
        let mut locks = self
            .refetches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(name.to_owned()).or_default().clone()
    }

    /// Unknown key: refetch once (single-flight per URI, rate limited), then look again.
    async fn refetch(
        &self,
        uri: &Url,
        seen: &Arc<KeySet>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<VerificationKey>, JwksError> {
        let name = uri.to_string();
        let unknown = || JwksError::UnknownKey {
            kid: kid.map(str::to_owned),
            alg,
        };
        let lock = self.lock_for(&name);
        let mut last = lock.lock().await;
        // Someone else may have refetched while we waited for the lock.
        if let Some(current) = self.sets.get(&name).await {
            if !Arc::ptr_eq(&current, seen) {
                if let Some(key) = current.find(kid, alg) {
                    return Ok(key);
                }
            }
        }
        if last.is_some_and(|t| t.elapsed() < REFETCH_INTERVAL) {
            tracing::debug!(jwks = %uri, ?kid, "unknown kid; refetch rate-limited");
            return Err(unknown());
        }
        *last = Some(Instant::now());
        tracing::debug!(jwks = %uri, ?kid, "unknown kid; refetching JWKS");
        let fresh = self.fetch(uri).await?;
        self.sets.insert(name, fresh.clone()).await;
        fresh.find(kid, alg).ok_or_else(unknown)
    }

    /// Periodic refresh of a key set already in use: keys the IdP removed stop verifying. A
    /// failed fetch keeps the cached keys (the IdP may be down for a moment).
    pub async fn refresh(&self, uri: &Url) {
        let name = uri.to_string();
        if !self.sets.contains_key(&name) {
            return;
        }
        let lock = self.lock_for(&name);
        let _single_flight = lock.lock().await;
        match self.fetch(uri).await {
            Ok(fresh) => self.sets.insert(name, fresh).await,
            Err(e) => {
                tracing::warn!(jwks = %uri, error = %e, "JWKS refresh failed; keeping the cached keys")
            }
        }
    }

    async fn fetch(&self, uri: &Url) -> Result<Arc<KeySet>, JwksError> {
        let result = self.fetch_once(uri).await;
        let slot = match &result {
            Ok(_) => 0,
            Err(JwksError::Fetch { .. }) => 1,
            Err(JwksError::Status { .. }) => 2,
            Err(_) => 3,
        };
        self.fetches[slot].fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn fetch_once(&self, uri: &Url) -> Result<Arc<KeySet>, JwksError> {
        let resp = self
            .http
            .get(uri.clone())
            .header("accept", "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(|e| fetch_error(uri, &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(JwksError::Status {
                uri: uri.to_string(),
                status: status.as_u16(),
            });
        }
        let body = resp.bytes().await.map_err(|e| fetch_error(uri, &e))?;
        let set = KeySet::parse(&body).ok_or_else(|| JwksError::Malformed {
            uri: uri.to_string(),
        })?;
        tracing::debug!(jwks = %uri, keys = set.len(), "JWKS fetched");
        Ok(Arc::new(set))
    }
}

fn fetch_error(uri: &Url, e: &reqwest::Error) -> JwksError {
    JwksError::Fetch {
        uri: uri.to_string(),
        reason: crate::providers::describe_http_error(e),
    }
}
