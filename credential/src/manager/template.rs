//! Templates: `{{id.field}}` and `{{id}}` placeholders in strings, parsed here and resolved by
//! [`Context::resolve`](crate::Context::resolve).

use crate::{Error, Result};

/// One part of a parsed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// A placeholder: the credential id, the field (none: the sole secret field), and the
    /// placeholder as written, for leaving it in place.
    Placeholder { id: &'a str, field: Option<&'a str>, written: &'a str },
}

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

/// Splits a template into text and placeholders. In `{{name}}` the field is what follows the last
/// `.` (ids may contain `/`); without a `.`, the placeholder names the credential's sole secret
/// field. Spaces inside the braces are ignored.
///
/// Errors name the byte offset and the problem, never the template's text.
pub(crate) fn parse(template: &str) -> Result<Vec<Piece<'_>>> {
    let malformed = |position: usize, reason: &'static str| Error::Template { position, reason };
    let mut pieces = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find(OPEN) {
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        let after_open = &rest[open + OPEN.len()..];
        let close = after_open
            .find(CLOSE)
            .ok_or_else(|| malformed(offset + open, "`{{` is never closed"))?;
        let inner = &after_open[..close];
        if inner.contains(OPEN) {
            return Err(malformed(offset + open, "a placeholder cannot contain `{{`"));
        }
        let name = inner.trim();
        if name.is_empty() {
            return Err(malformed(offset + open, "empty placeholder"));
        }
        let (id, field) = match name.rsplit_once('.') {
            Some((id, field)) => (id.trim(), Some(field.trim())),
            None => (name, None),
        };
        if id.is_empty() || field.is_some_and(str::is_empty) {
            return Err(malformed(offset + open, "empty credential id or field name"));
        }
        let end = open + OPEN.len() + close + CLOSE.len();
        pieces.push(Piece::Placeholder { id, field, written: &rest[open..end] });
        offset += end;
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_placeholders_are_split() {
        let pieces =
            parse("Bearer {{github/main.token}} and {{ db.primary.password }}{{api/key}}").unwrap();
        assert_eq!(
            pieces,
            [
                Piece::Text("Bearer "),
                Piece::Placeholder {
                    id: "github/main",
                    field: Some("token"),
                    written: "{{github/main.token}}"
                },
                Piece::Text(" and "),
                Piece::Placeholder {
                    id: "db.primary",
                    field: Some("password"),
                    written: "{{ db.primary.password }}"
                },
                Piece::Placeholder { id: "api/key", field: None, written: "{{api/key}}" },
            ]
        );
        assert_eq!(
            parse("no placeholders }} here").unwrap(),
            [Piece::Text("no placeholders }} here")]
        );
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn malformed_templates_name_the_position_and_problem() {
        for (template, position, reason) in [
            ("abc {{github.token", 4, "`{{` is never closed"),
            ("{{}}", 0, "empty placeholder"),
            ("x{{   }}", 1, "empty placeholder"),
            ("{{.token}}", 0, "empty credential id or field name"),
            ("{{github.}}", 0, "empty credential id or field name"),
            ("{{a {{b}} }}", 0, "a placeholder cannot contain `{{`"),
            ("{{a.b}} then {{", 13, "`{{` is never closed"),
        ] {
            match parse(template) {
                Err(Error::Template { position: found, reason: said }) => {
                    assert_eq!((found, said), (position, reason), "{template}");
                }
                other => panic!("{template}: {other:?}"),
            }
        }
    }
}
