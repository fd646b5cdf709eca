//! The whole lifecycle on the minimal feature set, and the compile errors for rules whose feature
//! is off.
#![allow(clippy::unwrap_used)]

use credential::prelude::*;

#[derive(Credential)]
#[credential(kind = "service_token")]
struct ServiceToken {
    #[secret(reveal_last = 4)]
    #[credential(validate(non_empty, length(min = 8)))]
    token: SecretString,
    #[credential(validate(non_empty))]
    service: String,
}

#[tokio::test(flavor = "current_thread")]
async fn the_minimal_set_derives_seals_stores_and_serves() {
    let manager = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .build()
        .await
        .unwrap();
    let token =
        ServiceToken { token: "tok_0123456789abcdef0123456789".into(), service: "billing".into() };
    let active = manager.create("svc/billing", token).await.unwrap().activate().await.unwrap();
    let ctx = manager.context(Principal::named("worker"));
    let served = ctx.get::<ServiceToken>("svc/billing").await.unwrap();
    assert_eq!(served.token.expose_secret(), "tok_0123456789abcdef0123456789");
    assert!(format!("{served:?}").contains("****6789"), "{served:?}");
    active.revoke("rotated out").await.unwrap();
    assert!(ctx.get::<ServiceToken>("svc/billing").await.is_err());

    let short = ServiceToken { token: "short".into(), service: String::new() };
    assert_eq!(short.validate().unwrap_err().len(), 2);
}

#[test]
fn rules_whose_feature_is_off_name_the_feature() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
