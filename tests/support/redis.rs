//! A real `redis-server` (Debian's) on a free loopback port, with no persistence, stopped on
//! `Drop`. `stop` and `start` let a test take Redis away and bring it back on the same port.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::util::free_port;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Its working directory (a master writes an RDB file there for a replica's sync).
    dir: tempfile::TempDir,
    /// Extra arguments (e.g. `--replicaof`), or a config file for a Sentinel.
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// A server started with `extra` arguments after the defaults.
    pub fn start_with(extra: Vec<String>) -> Self {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
            extra,
        };
        server.resume();
        server
    }

    /// `redis://127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: u16) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Kill the server (SIGKILL: an outage, not a shutdown). Its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again on the same port, empty, and wait until it accepts commands.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let mut child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                "--dir",
            ])
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs Debian's redis-server)");
        let stdout = child.stdout.take().expect("stdout");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = BufReader::new(stdout).lines();
        loop {
            assert!(Instant::now() < deadline, "redis-server did not start");
            match lines.next() {
                Some(Ok(line)) if line.contains("Ready to accept connections") => break,
                Some(Ok(_)) => {}
                _ => panic!("redis-server exited before it was ready"),
            }
        }
        // Keep draining its output so the pipe never fills.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// Run `redis-cli` against this server (e.g. `["KEYS", "*"]`) and return its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A master, one replica and one Sentinel watching them (`mymaster`, quorum 1, a master counts
/// as down after 500 ms), all on free loopback ports.
pub struct RedisSentinel {
    pub master: RedisServer,
    pub replica: RedisServer,
    sentinel: Child,
    pub sentinel_port: u16,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    pub fn start() -> Self {
        let master = RedisServer::start();
        let replica = RedisServer::start_with(vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            master.port.to_string(),
        ]);
        let dir = tempfile::tempdir().expect("temp dir");
        let sentinel_port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor mymaster 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds mymaster 500\n\
                 sentinel failover-timeout mymaster 2000\n",
                dir.path().display(),
                master.port
            ),
        )
        .expect("sentinel.conf");
        let sentinel = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel runs");
        let this = RedisSentinel {
            master,
            replica,
            sentinel,
            sentinel_port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !this
            .replica
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
        {
            assert!(Instant::now() < deadline, "the replica does not sync");
            std::thread::sleep(Duration::from_millis(100));
        }
        while this.master_port() != Some(this.master.port) {
            assert!(
                Instant::now() < deadline,
                "Sentinel does not name the master"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        this
    }

    /// `redis+sentinel://127.0.0.1:<sentinel>/mymaster/<db>`.
    pub fn url(&self, db: u16) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/mymaster/{db}",
            self.sentinel_port
        )
    }

    /// The master's port as the Sentinel reports it now.
    pub fn master_port(&self) -> Option<u16> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.sentinel_port.to_string()])
            .args(["SENTINEL", "get-master-addr-by-name", "mymaster"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }

    /// Wait until the replica has everything the master has, then kill the master and wait
    /// until the Sentinel has promoted the replica.
    pub fn fail_over(&mut self) {
        self.master.cli(&["WAIT", "1", "2000"]);
        self.master.stop();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.master_port() != Some(self.replica.port) {
            assert!(
                Instant::now() < deadline,
                "Sentinel did not promote the replica"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.sentinel.kill();
        let _ = self.sentinel.wait();
    }
}

/// A Redis Cluster of three masters (no replicas) on free loopback ports.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes: Vec<RedisServer> = (0..3)
            .map(|i| {
                RedisServer::start_with(vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    dir.path()
                        .join(format!("nodes-{i}.conf"))
                        .display()
                        .to_string(),
                    "--cluster-node-timeout".into(),
                    "2000".into(),
                    // Its own free port: the default (port + 10000) may be taken, or above
                    // 65535 for a port from the ephemeral range.
                    "--cluster-port".into(),
                    free_port().to_string(),
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while !nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "the cluster does not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes, _dir: dir }
    }

    /// `redis+cluster://127.0.0.1:<a>,127.0.0.1:<b>` (two of the three nodes, as a client
    /// would list some seeds).
    pub fn url(&self) -> String {
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{}",
            self.nodes[0].port, self.nodes[1].port
        )
    }

    /// Session keys held by each node.
    pub fn session_keys_per_node(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .map(|n| n.cli(&["KEYS", "sso-proxy:session:*"]).lines().count())
            .collect()
    }
}
