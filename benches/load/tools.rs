//! Helpers of the load benchmark (`benches/load/run.sh`), one release binary with subcommands:
//!
//! - `fast-op`  — a fast OpenID Provider for measuring the proxy's own login ceiling;
//! - `login`    — the browserless login driver (fresh cookie jar per login, concurrency C);
//! - `memory`   — resident bytes per memory-store session after creating many sessions;
//! - `serve`    — sso-proxy from the library with pingora's runtime knobs exposed (experiments).
//!
//! Build: `cargo bench --bench load_tools --no-run`; run.sh finds the executable. Plain
//! `cargo bench` also starts this target (with `--bench`): it then only prints this help.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fast_op.rs"]
mod fast_op;
#[path = "login.rs"]
mod login;
#[path = "memory.rs"]
mod memory;
#[path = "serve.rs"]
mod serve;
#[path = "../support/tokens.rs"]
mod tokens;

use std::collections::BTreeMap;
use std::process::ExitCode;

/// The proxy binary's allocator (src/main.rs), so `memory` and `serve` measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: load_tools <command> [--key value ...]
  fast-op --port P [--alg ES256|RS256] [--client-id ID --client-secret S] [--threads N]
  login   --target URL [--count N] [--concurrency C] [--user alice --password alice-pw]
          [--expect-header name=value] [--cpu name=PID ...] [--rss name=PID ...]
          [--max-seconds S] [--threads N] [--print-cookie]
  memory  [--sessions 100000] [--variant default|id_token|tokens|all]
  serve   --config FILE [--threads N] [--work-stealing true|false]";

/// `--key value` pairs after the command; repeated keys keep every value.
pub struct Args(BTreeMap<String, Vec<String>>);

impl Args {
    fn parse(raw: &[String]) -> Result<Args, String> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut it = raw.iter();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {k:?}"))?;
            // Flags without a value.
            if key == "print-cookie" {
                map.entry(key.to_owned()).or_default().push("true".into());
                continue;
            }
            let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            map.entry(key.to_owned()).or_default().push(v.clone());
        }
        Ok(Args(map))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .get(key)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: not a number: {v:?}")),
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = argv.first() else {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    };
    if command.starts_with("--") {
        // `cargo bench` runs every bench target with `--bench`; nothing to measure alone.
        println!("load_tools: driven by benches/load/run.sh\n{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match Args::parse(&argv[1..]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "fast-op" => fast_op::main(&args),
        "login" => login::main(&args),
        "memory" => memory::main(&args),
        "serve" => serve::main(&args),
        other => Err(format!("unknown command {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
