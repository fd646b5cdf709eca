//! An application's own operator tool: `cred` with the application's kinds. Every command works
//! for them, because the derive registers each kind at link time; `Cli::kind` adds a generic one.
//!
//! ```sh
//! cargo run -p credential-cli --example app_cred -- --store sqlite:app.db init
//! printf %s whsec_... | cargo run -p credential-cli --example app_cred -- \
//!     --store sqlite:app.db put webhook hooks/in --set url=https://hooks.example --set signing_key=-
//! ```

use credential::prelude::*;

/// The application's webhook signing credential.
#[allow(dead_code)] // made and read by the tool through the derive, never by name here
#[derive(Credential)]
#[credential(kind = "webhook")]
struct Webhook {
    #[secret(reveal_last = 4)]
    #[credential(validate(non_empty))]
    signing_key: SecretString,
    #[credential(validate(url))]
    url: String,
}

/// A generic kind: each instance is a kind of its own, so the tool is told of the one it uses.
#[allow(dead_code)] // as above
#[derive(Credential)]
#[credential(kind = "partner_token")]
struct PartnerToken<S> {
    #[secret]
    token: S,
    partner: String,
}

fn main() -> std::process::ExitCode {
    credential_cli::Cli::new().kind::<PartnerToken<SecretString>>().run()
}
