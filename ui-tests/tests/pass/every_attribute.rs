use std::collections::BTreeMap;

use credential::ValidationErrors;
use credential::prelude::*;
use credential::rules::RuleError;

fn starts_with_sk(key: &SecretString) -> Result<(), RuleError> {
    if key.expose_secret().starts_with("sk_") {
        Ok(())
    } else {
        Err(RuleError::new("must start with `sk_`"))
    }
}

fn consistent(service: &Service) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if service.retries > 0 && service.endpoint.is_none() {
        errors.add("endpoint", "consistent", "is required when retries are set");
    }
    errors.into_result()
}

#[derive(Credential)]
#[credential(kind = "payments.stripe/v2", validate = consistent)]
struct Service {
    #[secret(reveal_first = 3, reveal_last = 4)]
    #[credential(validate(non_empty, length(min = 8, max = 128), pattern = "^sk_[a-z]+_", custom = starts_with_sk))]
    api_key: SecretString,
    #[secret]
    #[credential(rename = "hmac", validate(length(min = 32)))]
    signing_key: SecretSlice<u8>,
    #[secret]
    #[credential(validate(url))]
    webhook: Option<SecretString>,
    #[credential(validate(url))]
    endpoint: Option<String>,
    #[credential(default, validate(range(min = 0, max = 10)))]
    retries: u8,
    #[credential(validate(range(min = -1.5, max = 1.5)))]
    skew: f64,
    #[credential(default)]
    labels: BTreeMap<String, String>,
    #[credential(validate(length(max = 16)))]
    scopes: Vec<String>,
    r#type: String,
    #[credential(expires_at)]
    expires: DateTime<Utc>,
}

#[derive(Credential)]
struct Optional {
    #[secret]
    token: SecretString,
    #[credential(expires_at)]
    expires: Option<DateTime<Utc>>,
}

#[test]
fn compiles_and_runs() {
    assert_eq!(Service::KIND, "payments.stripe/v2");
    assert_eq!(Optional::KIND, "optional");
    assert_eq!(Service::FIELDS[1].name, "hmac");
    assert_eq!(Service::FIELDS[8].name, "type");
}
