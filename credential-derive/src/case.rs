//! The default kind: the type name in snake case.

/// `GitHub` → `git_hub`, `AwsS3Key` → `aws_s3_key`, `OAuth2Token` → `o_auth2_token`.
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (index, ch) in name.char_indices() {
        if ch.is_uppercase() {
            if index > 0 {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn camel_case_becomes_snake_case() {
        assert_eq!(snake_case("GitHub"), "git_hub");
        assert_eq!(snake_case("Smtp"), "smtp");
        assert_eq!(snake_case("AwsS3Key"), "aws_s3_key");
    }
}
