//! The session cookie of the stores that keep sessions on the server side (memory, Redis): a
//! random 256-bit id, sealed into the cookie value so a guessed or altered value never names a
//! session.

use rand::RngCore;

use super::cookies::{self, SameSite};
use super::{clear_all, CookieNames, RequestCookies, Sealer};
use crate::config::SessionConfig;

/// A session id: 256 bits from a CSPRNG.
pub type SessionId = [u8; 32];

pub struct IdCookie {
    sealer: Sealer,
    names: CookieNames,
    secure: bool,
}

impl IdCookie {
    pub fn new(config: &SessionConfig, secure: bool) -> Self {
        IdCookie {
            sealer: Sealer::new(config.secret.expose()),
            names: cookies::cookie_names(config, secure),
            secure,
        }
    }

    pub fn name(&self) -> &str {
        self.names.session()
    }

    /// A fresh id (never derived from the request: no fixation).
    pub fn new_id() -> SessionId {
        let mut id: SessionId = [0; 32];
        rand::thread_rng().fill_bytes(&mut id);
        id
    }

    /// The id sealed in one cookie value, if it unseals to one.
    pub fn id(&self, value: &str) -> Option<SessionId> {
        let plain = self.sealer.unseal(self.names.session(), value)?;
        SessionId::try_from(plain.as_slice()).ok()
    }

    /// The ids of every session cookie of the request that unseals.
    pub fn ids<'a>(&'a self, cookies: &'a RequestCookies) -> impl Iterator<Item = SessionId> + 'a {
        cookies
            .get_all(self.names.session())
            .filter_map(|value| self.id(value))
    }

    /// The `Set-Cookie` that hands `id` to the browser for `max_age` seconds.
    pub fn set_cookie(&self, id: &SessionId, max_age: u64) -> String {
        let value = self.sealer.seal(self.names.session(), id);
        cookies::set_cookie(
            self.names.session(),
            &value,
            max_age,
            self.secure,
            SameSite::Lax,
        )
    }

    /// `Set-Cookie` values clearing the session cookie and every other cookie of ours.
    pub fn clear_all(&self, cookies: &RequestCookies) -> Vec<String> {
        clear_all(&self.names, cookies, self.secure)
    }
}

impl std::fmt::Debug for IdCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.names.session())
    }
}
