//! `${VAR}` interpolation of the raw configuration text, done before YAML parsing so that secrets
//! (`jwt_secret: "${JWT_SECRET}"`) never have to be written into the file.
//!
//! Only the `${NAME}` form is expanded (`$NAME` and defaults like `${NAME:-x}` are not: a `$` in a
//! password must not change meaning by accident). `$$` writes a literal `$`. A variable that is not set
//! is an error naming it, rather than a silent empty string that would start a server without a secret.

use thiserror::Error;

/// Why interpolation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InterpolateError {
    /// `${NAME}` names a variable that is not set (or is not valid Unicode).
    #[error(
        "environment variable {name} is not set (referenced as ${{{name}}} on line {line} of the configuration file)"
    )]
    Missing {
        /// The variable.
        name: String,
        /// 1-based line of the reference.
        line: usize,
    },
    /// `${` without a closing `}` or with a name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error(
        "malformed variable reference on line {line} of the configuration file: {text:?} (expected ${{NAME}})"
    )]
    Malformed {
        /// The offending text.
        text: String,
        /// 1-based line.
        line: usize,
    },
}

/// Expands every `${NAME}` in `text` with `lookup(NAME)`. YAML comments — whole lines and the end of a
/// line — are left as they are, so a commented-out `# jwt_secret: "${JWT_SECRET}"` or a trailing
/// `# e.g. ${JWT_SECRET}` does not require the variable.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let (code, comment) = line.split_at(comment_start(line).unwrap_or(line.len()));
        interpolate_line(code, index + 1, &lookup, &mut out)?;
        out.push_str(comment);
    }
    Ok(out)
}

/// Where the line's YAML comment starts: a `#` at the start of the line or after a space or tab, outside
/// single- and double-quoted strings (`"a # b"` is a value, `x#y` a plain scalar).
fn comment_start(line: &str) -> Option<usize> {
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut previous = None;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if double => escaped = true,
            '"' if !single => double = !double,
            '\'' if !double => single = !single,
            '#' if !single && !double && previous.is_none_or(|p: char| p == ' ' || p == '\t') => {
                return Some(i);
            }
            _ => {}
        }
        previous = Some(c);
    }
    None
}

/// Expands one line (1-based number `line`) into `out`.
fn interpolate_line(
    text: &str,
    line: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), InterpolateError> {
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let malformed = || InterpolateError::Malformed {
                text: rest[pos..].trim_end().chars().take(40).collect(),
                line,
            };
            let end = body.find('}').ok_or_else(malformed)?;
            let name = &body[..end];
            if !luminate_model::validate::is_identifier(name) {
                return Err(malformed());
            }
            let value = lookup(name).ok_or_else(|| InterpolateError::Missing {
                name: name.to_owned(),
                line,
            })?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "JWT_SECRET" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_braced_variables() {
        assert_eq!(
            interpolate("a: \"${JWT_SECRET}\"\nb: x${EMPTY}y", env).unwrap(),
            "a: \"s3cret\"\nb: xy"
        );
    }

    #[test]
    fn comments_are_not_expanded_but_quoted_hashes_are_values() {
        // A trailing comment may mention an unset variable; a `#` inside quotes or a plain scalar is
        // part of the value, and what follows it is expanded.
        let text = "a: \"${JWT_SECRET}\" # set ${NOPE} in production\n\
                    # b: ${NOPE}\n\
                    c: \"x # ${JWT_SECRET}\"\n\
                    d: 'it''s # ${JWT_SECRET}'\n\
                    e: v#${JWT_SECRET}\n";
        assert_eq!(
            interpolate(text, env).unwrap(),
            "a: \"s3cret\" # set ${NOPE} in production\n\
             # b: ${NOPE}\n\
             c: \"x # s3cret\"\n\
             d: 'it''s # s3cret'\n\
             e: v#s3cret\n"
        );
    }

    #[test]
    fn dollar_forms_that_are_not_references_stay() {
        assert_eq!(
            interpolate("p: a$b $$ {x} $", env).unwrap(),
            "p: a$b $ {x} $"
        );
    }

    #[test]
    fn missing_variable_is_named_with_its_line() {
        let err = interpolate("a: 1\nb: ${NOPE}\n", env).unwrap_err();
        assert_eq!(
            err,
            InterpolateError::Missing {
                name: "NOPE".into(),
                line: 2
            }
        );
        assert!(err.to_string().contains("NOPE"));
    }

    #[test]
    fn comment_lines_are_not_expanded() {
        assert_eq!(
            interpolate("  # secret: ${NOPE}\na: ${JWT_SECRET} # ${EMPTY}\n", env).unwrap(),
            "  # secret: ${NOPE}\na: s3cret # ${EMPTY}\n"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(matches!(
            interpolate("a: ${OPEN", env),
            Err(InterpolateError::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            interpolate("a: ${1X}", env),
            Err(InterpolateError::Malformed { .. })
        ));
        assert!(matches!(
            interpolate("a: ${}", env),
            Err(InterpolateError::Malformed { .. })
        ));
    }
}
