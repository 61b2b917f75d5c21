//! Logging set-up: `tracing` with text or JSON output at the configured level. Request spans
//! carry the request id (see the proxy module). Prometheus metrics live in [`metrics`].

pub mod metrics;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Install the global subscriber. Pingora's own `log` records are bridged into it.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_new(format!(
        "{},pingora_core=warn,pingora_proxy=warn",
        config.level
    ))
    .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only on a terminal: log collectors get plain `key=value` text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if result.is_err() {
        eprintln!("logging was already initialised");
    }
}
