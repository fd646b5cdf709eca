use credential::prelude::*;

#[derive(Credential)]
#[credential(kind = "GitHub", colour = "blue")]
struct GitHub {
    #[secret]
    token: String,
    #[credential(validate(length(min = 5, max = 1), pattern = "("))]
    username: String,
    #[credential(expires_at, expires_at)]
    expires: Option<DateTime<Utc>>,
}

fn main() {}
