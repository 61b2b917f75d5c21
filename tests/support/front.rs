//! A front server (nginx, Traefik) that a test runs from one of `deploy/examples/`: the example's
//! files with their addresses swapped for test ports, the process killed on `Drop`, and its log
//! printed when the test failed.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

pub struct FrontServer {
    child: Child,
    /// Holds the rendered configuration and the log.
    pub dir: tempfile::TempDir,
    name: &'static str,
    log_file: &'static str,
}

impl FrontServer {
    /// `child` writes its log to `log_file` in `dir`.
    pub fn new(
        name: &'static str,
        child: Child,
        dir: tempfile::TempDir,
        log_file: &'static str,
    ) -> Self {
        FrontServer {
            child,
            dir,
            name,
            log_file,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(self.log_file)).unwrap_or_default()
    }

    /// Poll `ready` until it says yes; panic with the log when the process exits or `timeout`
    /// passes.
    pub async fn wait_until<F, Fut>(&mut self, what: &str, timeout: Duration, mut ready: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status}; {}:\n{}",
                    self.name,
                    self.log_file,
                    self.log()
                );
            }
            if ready().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not {what}; {}:\n{}",
                self.name,
                self.log_file,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for FrontServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- {} {} ----\n{}", self.name, self.log_file, self.log());
        }
    }
}

/// `deploy/examples/<example>`.
pub fn example_dir(example: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/examples")
        .join(example)
}

/// Replace each `from` by `to` in the example file `file`. Each `from` must be present, so the
/// example and its test cannot drift apart silently.
pub fn swap(mut text: String, file: &str, pairs: &[(&str, String)]) -> String {
    for (from, to) in pairs {
        assert!(
            text.contains(from),
            "the example {file} no longer contains {from}"
        );
        text = text.replace(from, to);
    }
    text
}
