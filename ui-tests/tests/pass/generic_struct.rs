use credential::field::PlainField;
use credential::prelude::*;

#[derive(Credential)]
#[credential(kind = "tagged")]
struct Tagged<T> {
    #[secret]
    token: SecretString,
    tag: T,
}

fn kind_of<C: Credential>() -> &'static str {
    C::KIND
}

fn round_trip<T: PlainField + Send + Sync + 'static>(tag: T) -> T {
    let tagged = Tagged { token: "t".into(), tag };
    Tagged::<T>::decode(&tagged.encode())
        .map(|decoded| decoded.tag)
        .unwrap_or_else(|_| std::process::abort())
}

#[test]
fn compiles_and_runs() {
    assert_eq!(kind_of::<Tagged<u32>>(), "tagged");
    assert_eq!(round_trip(7u32), 7);
    assert_eq!(round_trip(String::from("x")), "x");
}
