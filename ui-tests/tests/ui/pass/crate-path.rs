mod reexport {
    pub use ::credential as inner;
}

use credential::prelude::*;

#[derive(reexport::inner::Credential)]
#[credential(crate = "reexport::inner")]
struct GitHub {
    #[secret]
    token: SecretString,
}

fn main() {
    assert_eq!(GitHub::KIND, "git_hub");
}
