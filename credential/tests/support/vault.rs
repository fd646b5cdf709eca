//! OpenBao for the Vault store tests: a KV v2 mount of its own per test on the server
//! `.ci/openbao.sh start` made, or a dev server of its own (for sealing and stopping), both
//! administered with the `bao` command-line tool.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A server to run `bao` against.
#[derive(Clone)]
pub(crate) struct Bao {
    pub(crate) address: String,
    pub(crate) token: String,
    binary: String,
}

impl Bao {
    /// The shared test server, or `None` when none is configured: the test says so and passes,
    /// unless `CREDENTIAL_TEST_VAULT_REQUIRED` is set (as CI sets it), when it fails.
    pub(crate) fn shared(test: &str) -> Option<Self> {
        let (Ok(address), Ok(token), Ok(binary)) = (
            std::env::var("CREDENTIAL_TEST_VAULT_ADDR"),
            std::env::var("CREDENTIAL_TEST_VAULT_TOKEN"),
            std::env::var("CREDENTIAL_TEST_BAO"),
        ) else {
            assert!(
                std::env::var_os("CREDENTIAL_TEST_VAULT_REQUIRED").is_none(),
                "CREDENTIAL_TEST_VAULT_ADDR is not set: start a server with .ci/openbao.sh"
            );
            eprintln!("skipped {test}: no OpenBao server (see .ci/openbao.sh)");
            return None;
        };
        Some(Self { address, token, binary })
    }

    /// `bao ARGS` against this server; panics with its output when it fails.
    pub(crate) fn run(&self, args: &[&str]) -> String {
        let output = self.try_run(args);
        assert!(
            output.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub(crate) fn try_run(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .args(args)
            .env("BAO_ADDR", &self.address)
            .env("BAO_TOKEN", &self.token)
            .output()
            .unwrap()
    }

    /// A fresh KV v2 mount for `test`, disabled when dropped; returned once it serves reads (a
    /// new mount sets itself up for a moment first).
    pub(crate) fn kv_mount(&self, test: &str) -> Mount {
        let mount = self.mount(test, &["secrets", "enable", "-version=2"], "kv");
        for _ in 0..500 {
            let probe = self.try_run(&["kv", "get", &format!("-mount={}", mount.path), "probe"]);
            if !String::from_utf8_lossy(&probe.stderr).contains("Upgrading") {
                return mount;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the KV mount `{}` never finished setting itself up", mount.path);
    }

    /// A fresh transit engine for `test` with a key named `key`, disabled when dropped.
    pub(crate) fn transit_mount(&self, test: &str, key: &str) -> Mount {
        let mount = self.mount(test, &["secrets", "enable"], "transit");
        self.run(&["write", "-f", &format!("{}/keys/{key}", mount.path)]);
        mount
    }

    fn mount(&self, test: &str, enable: &[&str], engine: &str) -> Mount {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = format!(
            "{engine}-{test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut args = enable.to_vec();
        let path_arg = format!("-path={path}");
        args.push(&path_arg);
        args.push(engine);
        self.run(&args);
        Mount { bao: self.clone(), path }
    }
}

/// A secrets engine mounted for one test.
pub(crate) struct Mount {
    bao: Bao,
    pub(crate) path: String,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.bao.try_run(&["secrets", "disable", &self.path]);
    }
}

/// A dev server of a test's own, stopped when dropped.
pub(crate) struct BaoServer {
    child: Child,
    pub(crate) bao: Bao,
    pub(crate) unseal_key: String,
}

impl BaoServer {
    pub(crate) fn start(shared: &Bao) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let token = format!("own-root-{}-{port}", std::process::id());
        let child = Command::new(&shared.binary)
            .args(["server", "-dev", &format!("-dev-listen-address=127.0.0.1:{port}")])
            .arg(format!("-dev-root-token-id={token}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bao = Bao {
            address: format!("http://127.0.0.1:{port}"),
            token,
            binary: shared.binary.clone(),
        };
        // From here on, dropping the server (a panic included) stops the process.
        let mut server = Self { child, bao, unseal_key: String::new() };
        let mut lines = BufReader::new(server.child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(key) = line.trim().strip_prefix("Unseal Key: ") {
                server.unseal_key = key.to_owned();
            }
            if line.contains("Development mode should NOT be used") {
                break;
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        for _ in 0..100 {
            if server.bao.try_run(&["status"]).status.success() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the OpenBao dev server did not start");
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BaoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
