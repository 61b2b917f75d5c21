//! Background refresh of OIDC discovery documents and key sets (DESIGN section 6, "JWKS"):
//! every `oidc_refresh_interval` each ready connection's discovery document is fetched again
//! and every key set in use is re-read, so a key the IdP removed stops being trusted. Failures
//! keep what is cached. Connections whose explicit endpoints stand alone also get one
//! discovery attempt at start-up (it only adds what the settings leave out).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

/// Runs for the life of the process.
pub async fn run(app: Arc<App>, every: Duration) {
    let registry = app.registry.load_full();
    for p in registry.all().filter(|p| p.is_standalone()) {
        p.refresh_discovery().await;
    }
    drop(registry);
    loop {
        tokio::time::sleep(every).await;
        refresh_once(&app).await;
    }
}

/// One pass: discovery of every ready connection, then each key set in use.
pub async fn refresh_once(app: &App) {
    let registry = app.registry.load_full();
    for p in registry.all().filter(|p| p.is_ready()) {
        p.refresh_discovery().await;
    }
    let uris: BTreeSet<url::Url> = registry
        .all()
        .filter_map(|p| p.metadata()?.jwks_uri.clone())
        .collect();
    for uri in &uris {
        app.jwks.refresh(uri).await;
    }
    tracing::debug!(
        key_sets = uris.len(),
        "OIDC discovery and key sets refreshed"
    );
}
