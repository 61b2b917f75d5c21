//! Connections an admin edit replaced, kept for as long as a login started on them may still
//! come back (the pending-login lifetime). A callback whose pending login names an older
//! generation than the connection now in the registry finishes on the provider it started
//! with: its endpoints, client credentials, keys and mapping rules. A connection that was
//! deleted or deactivated is not looked up here at all: its callbacks are refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use super::oidc::OidcProvider;
use super::saml::SamlProvider;
use super::Registry;

/// How many replaced providers are kept at most (each edit retires one).
const MAX_RETIRED: u64 = 1_000;

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A number no other provider object of this process has: the identity of one build of a
/// connection's settings. 0 is never handed out (pending logins from before generations).
pub fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

pub struct Retired {
    oidc: Cache<(String, u64), Arc<OidcProvider>>,
    saml: Cache<(String, u64), Arc<SamlProvider>>,
}

impl Retired {
    /// `keep`: how long a replaced provider stays available (the pending-login lifetime).
    pub fn new(keep: Duration) -> Self {
        Retired {
            oidc: Cache::builder()
                .max_capacity(MAX_RETIRED)
                .time_to_live(keep)
                .build(),
            saml: Cache::builder()
                .max_capacity(MAX_RETIRED)
                .time_to_live(keep)
                .build(),
        }
    }

    /// Keep every provider of `old` that `next` replaces with another build under the same id.
    pub fn retire_replaced(&self, old: &Registry, next: &Registry) {
        for p in old.all() {
            if next
                .get(p.id())
                .is_some_and(|n| n.generation != p.generation)
            {
                tracing::debug!(provider = %p.id(), generation = p.generation, "connection replaced; kept for logins in flight");
                self.oidc
                    .insert((p.id().to_owned(), p.generation), p.clone());
            }
        }
        for p in old.saml_all() {
            if next
                .get_saml(p.id())
                .is_some_and(|n| n.generation != p.generation)
            {
                tracing::debug!(provider = %p.id(), generation = p.generation, "connection replaced; kept for logins in flight");
                self.saml
                    .insert((p.id().to_owned(), p.generation), p.clone());
            }
        }
    }

    /// The provider a login of `generation` started on: `current` when it is that build (or
    /// the login predates generations, or the old build is no longer kept), else the retired one.
    pub fn oidc_for(&self, current: &Arc<OidcProvider>, generation: u64) -> Arc<OidcProvider> {
        if generation == 0 || generation == current.generation {
            return current.clone();
        }
        self.oidc
            .get(&(current.id().to_owned(), generation))
            .unwrap_or_else(|| current.clone())
    }

    /// As [`oidc_for`](Self::oidc_for), for SAML.
    pub fn saml_for(&self, current: &Arc<SamlProvider>, generation: u64) -> Arc<SamlProvider> {
        if generation == 0 || generation == current.generation {
            return current.clone();
        }
        self.saml
            .get(&(current.id().to_owned(), generation))
            .unwrap_or_else(|| current.clone())
    }
}
