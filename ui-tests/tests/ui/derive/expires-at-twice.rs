use credential::prelude::*;

#[derive(Credential)]
struct GitHub {
    #[secret]
    token: SecretString,
    #[credential(expires_at)]
    expires: DateTime<Utc>,
    #[credential(expires_at)]
    refresh_expires: Option<DateTime<Utc>>,
}

fn main() {}
