//! A real OpenID provider on loopback for the refresh tests: `oidc-provider` (npm), installed
//! with `npm ci` from the committed lock file in `tests/oidc` on first use, run by Node.js, one
//! process per test, stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use base64ct::Encoding as _;

/// The client the provider knows (see `tests/oidc/provider.mjs`).
pub(crate) const CLIENT_ID: &str = "workflow-engine";
pub(crate) const CLIENT_SECRET: &str = "client-secret-for-tests-only-0123456789";

pub(crate) struct OidcProvider {
    child: Child,
    pub(crate) port: u16,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc")
}

/// Whether Node.js and npm are installed, which the provider runs on (see `tools`: a test without
/// them says what to install and passes, unless tools are required).
pub(crate) fn available() -> bool {
    super::tools::installed(&[("node", "nodejs"), ("npm", "npm")])
}

/// `npm ci`, once per test process, unless the packages are there.
fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = provider_dir();
        if dir.join("node_modules/oidc-provider").is_dir() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm (Node.js) is needed for the OpenID provider");
        assert!(status.success(), "npm ci in tests/oidc failed");
    });
}

impl OidcProvider {
    /// A provider on a free loopback port.
    pub(crate) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port)
    }

    /// A provider on `port`, once it listens.
    pub(crate) fn start_on(port: u16) -> Self {
        install();
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .arg(port.to_string())
            .current_dir(provider_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node (Node.js) is needed for the OpenID provider");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the OpenID provider did not start");
        Self { child, port }
    }

    /// The token endpoint.
    pub(crate) fn token_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// A refresh token of a fresh grant, as a log-in would give one.
    pub(crate) fn refresh_token(&self) -> String {
        let body = self.http("POST", "/test/grant", "");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        answer["refresh_token"].as_str().unwrap().to_owned()
    }

    /// How many token requests of `grant_type` succeeded and failed (by OAuth 2.0 error code).
    pub(crate) fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&self.http("GET", "/test/stats", "")).unwrap()
    }

    /// Successful token requests of `grant_type`.
    pub(crate) fn successes(&self, grant_type: &str) -> u64 {
        self.stats()["success"][grant_type].as_u64().unwrap_or(0)
    }

    /// Every token request the provider received.
    pub(crate) fn requests(&self) -> u64 {
        self.stats()["requests"].as_u64().unwrap()
    }

    /// Redeems `refresh_token` directly at the token endpoint; returns the response body.
    pub(crate) fn redeem(&self, refresh_token: &str) -> String {
        let form = format!("grant_type=refresh_token&refresh_token={refresh_token}");
        self.http("POST", "/token", &form)
    }

    /// Stops the provider and waits for it to exit.
    pub(crate) fn stop(mut self) -> u16 {
        self.kill();
        self.port
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An HTTP/1.0 exchange with the provider, authenticated as the client; the response body.
    fn http(&self, method: &str, path: &str, form: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let basic =
            base64ct::Base64::encode_string(format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes());
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.kill();
    }
}
