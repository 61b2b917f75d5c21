//! Logins in progress: `state`, `nonce`, PKCE verifier and return target, each login in its own
//! short-lived sealed cookie, plus this process's memory of used states (single use).

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{debug, error};

use super::cookies::{self, SameSite};
use super::{CookieNames, Once, RequestCookies, Sealer, UseOnce};

/// A login must finish within this many seconds.
pub const PENDING_TTL: u64 = 600;
/// At most this many pending-login cookies at once; older ones are evicted.
pub const MAX_PENDING: usize = 5;
/// Hash characters in a pending cookie's name.
const NAME_HASH_LEN: usize = 12;
/// Longest `state` accepted by `take`; ours are 43 characters.
const MAX_STATE_LEN: usize = 512;
/// Tolerated clock difference between replicas for a `created_at` in the future.
const FUTURE_SKEW: u64 = 60;

/// A login in progress, sealed into its pending cookie. `Debug` redacts nonce and verifier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce_verifier: Option<String>,
    /// Connection id.
    pub provider: String,
    /// Where to go after the login (already checked).
    pub return_to: String,
    /// Unix seconds.
    pub created_at: u64,
    /// A Test Provider login (admin plane): the callback shows what came back, no session.
    #[serde(default)]
    pub test: bool,
    /// The build of the connection the login started on: the callback finishes on that one
    /// even when an admin edit replaced it since (0: unknown, the current one is used).
    #[serde(default)]
    pub generation: u64,
}

/// Why a callback's `state` does not lead to a pending login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PendingError {
    #[error("no login in progress for this state in this browser")]
    Missing,
    #[error("the login took too long and expired")]
    Expired,
    #[error("this login response was already used")]
    Replayed,
    #[error("the login state is invalid")]
    Invalid,
    #[error("the shared session store (Redis) is unavailable; try again in a moment")]
    Unavailable,
}

/// Issues and takes pending-login cookies; `used` remembers every state taken in the last
/// `PENDING_TTL` (in Redis when the session store is shared).
pub struct PendingStore {
    sealer: Arc<Sealer>,
    names: CookieNames,
    secure: bool,
    used: Arc<UseOnce>,
}

impl PendingStore {
    /// `base_cookie_name` is the configured session cookie name (`sso_session`); pending cookies
    /// are `[__Host-]<base>_st_<hash of state>`.
    pub fn new(
        sealer: Arc<Sealer>,
        base_cookie_name: &str,
        secure: bool,
        used: Arc<UseOnce>,
    ) -> Self {
        PendingStore {
            sealer,
            names: CookieNames::new(base_cookie_name, secure),
            secure,
            used,
        }
    }

    /// 256 random bits, base64url (43 characters): for `state`, `nonce` and a PKCE verifier
    /// (RFC 7636 charset).
    pub fn random_token() -> String {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The PKCE S256 challenge for `verifier`.
    pub fn pkce_challenge(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }

    /// The pending cookie's name for `state`.
    pub fn cookie_name(&self, state: &str) -> String {
        let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(state.as_bytes()));
        let hash = hash.get(..NAME_HASH_LEN).unwrap_or(&hash);
        format!("{}{hash}", self.names.pending_prefix())
    }

    /// `Set-Cookie` values storing `pending` (`SameSite=Lax`, for OIDC's top-level GET
    /// callback), and clearing the oldest pending cookies so at most `MAX_PENDING` remain.
    pub fn issue(&self, pending: &PendingLogin, cookies: &RequestCookies) -> Vec<String> {
        self.issue_with(pending, cookies, SameSite::Lax)
    }

    /// As [`PendingStore::issue`], but `SameSite=None; Secure` on https, for SAML's cross-site
    /// ACS POST. On plain http it stays `Lax`.
    pub fn issue_with_same_site_none(
        &self,
        pending: &PendingLogin,
        cookies: &RequestCookies,
    ) -> Vec<String> {
        self.issue_with(pending, cookies, SameSite::None)
    }

    fn issue_with(
        &self,
        pending: &PendingLogin,
        cookies: &RequestCookies,
        same_site: SameSite,
    ) -> Vec<String> {
        let name = self.cookie_name(&pending.state);
        let mut out = self.evict_oldest(&name, cookies);
        match serde_json::to_vec(pending) {
            Ok(json) => {
                let value = self.sealer.seal(&name, &json);
                out.push(cookies::set_cookie(
                    &name,
                    &value,
                    PENDING_TTL,
                    self.secure,
                    same_site,
                ));
            }
            Err(err) => error!(error = %err, "could not serialise the pending login"),
        }
        out
    }

    /// Clears for the oldest pending cookies (unreadable ones first) when adding `new_name`
    /// would leave more than `MAX_PENDING`.
    fn evict_oldest(&self, new_name: &str, cookies: &RequestCookies) -> Vec<String> {
        let mut existing: Vec<(u64, &str)> = Vec::new();
        for (name, value) in cookies.iter() {
            if !self.names.is_pending(name)
                || name == new_name
                || existing.iter().any(|(_, n)| *n == name)
            {
                continue;
            }
            let created_at = self.open(name, value).map_or(0, |p| p.created_at);
            existing.push((created_at, name));
        }
        let excess = (existing.len() + 1).saturating_sub(MAX_PENDING);
        if excess == 0 {
            return Vec::new();
        }
        existing.sort_unstable();
        debug!(evicted = excess, "evicting old pending-login cookies");
        existing
            .iter()
            .take(excess)
            .map(|(_, name)| cookies::clear_cookie(name, self.secure))
            .collect()
    }

    fn open(&self, name: &str, value: &str) -> Option<PendingLogin> {
        let json = self.sealer.unseal(name, value)?;
        serde_json::from_slice(&json).ok()
    }

    /// The pending login for `state`, marked used, plus the `Set-Cookie` clearing its cookie.
    /// Checks, in order: a cookie for this state exists (`Missing`), it unseals and holds this
    /// very state (`Invalid`), it is younger than `PENDING_TTL` (`Expired`), and the state was
    /// not taken before (`Replayed`; `Unavailable` when the shared store cannot say).
    pub async fn take(
        &self,
        state: &str,
        cookies: &RequestCookies,
        now: u64,
    ) -> Result<(PendingLogin, String), PendingError> {
        if state.is_empty() || state.len() > MAX_STATE_LEN {
            debug!(
                reason = "empty or oversized state",
                "pending login rejected"
            );
            return Err(PendingError::Invalid);
        }
        let name = self.cookie_name(state);
        let mut values = cookies.get_all(&name).peekable();
        if values.peek().is_none() {
            debug!(
                reason = "no pending cookie for this state",
                "pending login rejected"
            );
            return Err(PendingError::Missing);
        }
        let pending = values
            .filter_map(|value| self.open(&name, value))
            .find(|p| constant_time_eq(p.state.as_bytes(), state.as_bytes()))
            .ok_or_else(|| {
                debug!(
                    reason = "pending cookie does not unseal or match",
                    "pending login rejected"
                );
                PendingError::Invalid
            })?;
        if pending.created_at > now.saturating_add(FUTURE_SKEW) {
            debug!(reason = "created in the future", "pending login rejected");
            return Err(PendingError::Invalid);
        }
        if now.saturating_sub(pending.created_at) >= PENDING_TTL {
            debug!(reason = "expired", "pending login rejected");
            return Err(PendingError::Expired);
        }
        let ttl = Duration::from_secs(PENDING_TTL);
        match self
            .used
            .first_use(Once::LoginState, state.as_bytes(), ttl)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                debug!(reason = "state already used", "pending login rejected");
                return Err(PendingError::Replayed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "pending login rejected: its single use cannot be checked");
                return Err(PendingError::Unavailable);
            }
        }
        Ok((pending, cookies::clear_cookie(&name, self.secure)))
    }

    /// The `Set-Cookie` clearing the pending cookie for `state` (e.g. after a failed callback).
    pub fn clear(&self, state: &str) -> String {
        cookies::clear_cookie(&self.cookie_name(state), self.secure)
    }
}

impl std::fmt::Debug for PendingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingStore")
            .field("prefix", &self.names.pending_prefix())
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &self.state)
            .field("nonce", &"<redacted>")
            .field(
                "pkce_verifier",
                &self.pkce_verifier.as_ref().map(|_| "<redacted>"),
            )
            .field("provider", &self.provider)
            .field("return_to", &self.return_to)
            .field("created_at", &self.created_at)
            .field("test", &self.test)
            .field("generation", &self.generation)
            .finish()
    }
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[path = "pending_tests.rs"]
mod tests;
