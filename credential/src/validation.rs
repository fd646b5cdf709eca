//! Validation failures: which field broke which rule, never the value.

use std::borrow::Cow;
use std::fmt;

/// One failed rule: the field's stored name, the rule's name and a message about the rule.
///
/// Messages come from the rule, not from the value, so they never contain the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    field: Cow<'static, str>,
    rule: &'static str,
    message: Cow<'static, str>,
}

impl ValidationError {
    /// The stored name of the field, or `"*"` for a check on the whole credential that names no
    /// field.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The rule that failed: `non_empty`, `length`, `range`, `url`, `pattern`, or the name of a
    /// custom function.
    pub fn rule(&self) -> &'static str {
        self.rule
    }

    /// What the rule requires, e.g. "must be at most 39 characters".
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.rule)
    }
}

/// Every rule a credential fails, in field order. Returned by
/// [`Credential::validate`](crate::Credential::validate).
///
/// ```
/// use credential::ValidationErrors;
///
/// let mut errors = ValidationErrors::new();
/// errors.add("port", "range", "must be at least 1");
/// assert_eq!(errors.len(), 1);
/// assert_eq!(errors.to_string(), "port: must be at least 1 (range)");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    errors: Vec<ValidationError>,
}

impl ValidationErrors {
    /// No failures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` fails `rule`. `message` says what the rule requires; it must not
    /// contain the value.
    pub fn add(
        &mut self,
        field: impl Into<Cow<'static, str>>,
        rule: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) {
        self.errors.push(ValidationError { field: field.into(), rule, message: message.into() });
    }

    /// Appends all failures of `other`.
    pub fn extend(&mut self, other: ValidationErrors) {
        self.errors.extend(other.errors);
    }

    /// Whether nothing failed.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// How many rules failed.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// The failures in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.errors.iter()
    }

    /// The failures of one field.
    pub fn for_field<'a>(
        &'a self,
        field: &'a str,
    ) -> impl Iterator<Item = &'a ValidationError> + 'a {
        self.errors.iter().filter(move |error| error.field == field)
    }

    /// `Ok(())` when nothing failed, else `Err(self)`.
    ///
    /// # Errors
    /// `self`, when at least one rule failed.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            error.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a ValidationError;
    type IntoIter = std::slice::Iter<'a, ValidationError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// The failure of a `custom` rule. Its message is a `&'static str`, so it cannot be built from the
/// value it judges.
///
/// ```
/// use credential::rules::RuleError;
///
/// fn github_token(token: &credential::SecretString) -> Result<(), RuleError> {
///     use credential::ExposeSecret;
///     if token.expose_secret().starts_with("ghp_") {
///         Ok(())
///     } else {
///         Err(RuleError::new("must start with `ghp_`"))
///     }
/// }
/// assert!(github_token(&"nope".into()).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleError {
    message: &'static str,
}

impl RuleError {
    /// A failure described by `message`.
    pub const fn new(message: &'static str) -> Self {
        Self { message }
    }

    /// What the rule requires.
    pub fn message(&self) -> &'static str {
        self.message
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for RuleError {}
