//! `serve`: runs sso-proxy from the library, as `sso_proxy::app::run` does, but with the pingora
//! runtime settings exposed (`--threads`, `--work-stealing`), to measure what they change
//! (`run.sh` with `SSO_VARIANTS=1`). The figures of record always come from the real binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use sso_proxy::app::{App, SystemClock};
use sso_proxy::config::{self, Sources};

use super::Args;

pub fn main(args: &Args) -> Result<(), String> {
    let file = PathBuf::from(args.get("config").ok_or("--config is required")?);
    let sources = Sources {
        file: Some(file),
        env: BTreeMap::new(),
        cli: Vec::new(),
    };
    let config = config::load(&sources).map_err(|e| {
        e.0.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    sso_proxy::telemetry::init(&config.log);
    let listen = config.listen.to_string();
    let conf = ServerConf {
        threads: args.num(
            "threads",
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )?,
        work_stealing: args.get("work-stealing").is_none_or(|v| v != "false"),
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(10),
        ..ServerConf::default()
    };
    let app = Arc::new(App::new(config, Arc::new(SystemClock)).map_err(|e| e.to_string())?);

    // Discovery in the background, as the binary does.
    let background = app.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        rt.block_on(async move {
            background.discover_until_ready().await;
            std::future::pending::<()>().await;
        })
    });

    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service(
        &server.configuration,
        sso_proxy::proxy::SsoProxy::new(app),
    );
    service.add_tcp(&listen);
    server.add_service(service);
    eprintln!(
        "serve: {listen}, threads {}, work stealing {}",
        server.configuration.threads, server.configuration.work_stealing
    );
    server.run_forever()
}
