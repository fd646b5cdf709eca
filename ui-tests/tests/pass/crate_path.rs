mod reexport {
    pub(super) use ::credential as inner;
}

use credential::prelude::*;

#[derive(reexport::inner::Credential)]
#[credential(crate = "reexport::inner")]
struct GitHub {
    #[secret]
    token: SecretString,
}

#[test]
fn compiles_and_runs() {
    assert_eq!(GitHub::KIND, "git_hub");
}
