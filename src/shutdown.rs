//! Graceful shutdown on SIGTERM. pingora stops accepting at once, then sleeps its grace period
//! ([`GRACE_PERIOD_SECS`]) and drops whatever still runs. The proxy counts the requests in
//! flight and exits (code 0) as soon as none is left, so a drain ends early while a request
//! taking up to the grace period still completes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight requests may take to finish after SIGTERM (below Kubernetes' default
/// `terminationGracePeriodSeconds` of 30).
pub const GRACE_PERIOD_SECS: u64 = 20;

/// Requests being served now.
#[derive(Debug, Default, Clone)]
pub struct InFlight(Arc<AtomicUsize>);

/// Counts one request while it lives.
#[derive(Debug)]
pub struct InFlightGuard(Arc<AtomicUsize>);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.0.clone())
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// After SIGTERM, exit once no request is in flight (pingora's grace period caps the wait).
pub async fn exit_when_drained(in_flight: InFlight, mut terminate: tokio::signal::unix::Signal) {
    if terminate.recv().await.is_none() {
        return;
    }
    tracing::info!(
        in_flight = in_flight.count(),
        grace_secs = GRACE_PERIOD_SECS,
        "SIGTERM: no new connections; exiting once the requests in flight are done"
    );
    // pingora closes its listeners on the same signal.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while in_flight.count() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!("requests drained; exiting");
    std::process::exit(0);
}
