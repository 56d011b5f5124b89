//! `${VAR}` and `${VAR:-default}` in pipeline files, resolved from the
//! environment inside parsed strings (not in the raw text), so TOML syntax and
//! the positions of everything else stay true. `$${` writes a literal `${`.

/// What went wrong, with the byte offset of the `${` inside the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    pub message: String,
    pub offset: usize,
}

/// Replaces every `${...}` in `text` using `lookup`. Returns `None` when the
/// text has nothing to replace, so callers keep the original (and its spans).
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, InterpolationError> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            let consumed = at + 3;
            rest = after;
            offset += consumed;
            continue;
        }
        let Some(body_and_rest) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            offset += at + 1;
            continue;
        };
        let Some(end) = body_and_rest.find('}') else {
            return Err(InterpolationError {
                message: "unclosed `${` (write `$${` for a literal `${`)".into(),
                offset: offset + at,
            });
        };
        let body = &body_and_rest[..end];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(InterpolationError {
                message: format!("`{name}` is not a valid environment variable name"),
                offset: offset + at,
            });
        }
        match (lookup(name).filter(|v| !v.is_empty() || default.is_none()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(InterpolationError {
                    message: format!(
                        "environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)"
                    ),
                    offset: offset + at,
                })
            }
        }
        let consumed = at + 2 + end + 1;
        rest = &rest[consumed..];
        offset += consumed;
    }
    out.push_str(rest);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KAFKA_BROKERS" => Some("a:9092,b:9092".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<Option<String>, InterpolationError> {
        interpolate(text, &env)
    }

    #[test]
    fn variables_and_defaults_are_resolved() {
        assert_eq!(run("${KAFKA_BROKERS}").unwrap().unwrap(), "a:9092,b:9092");
        assert_eq!(
            run("x-${NOPE:-/var/log/httpd/access_log}")
                .unwrap()
                .unwrap(),
            "x-/var/log/httpd/access_log"
        );
        assert_eq!(run("${EMPTY:-fallback}").unwrap().unwrap(), "fallback");
        assert_eq!(run("${EMPTY}").unwrap().unwrap(), "");
    }

    #[test]
    fn text_without_variables_is_left_alone() {
        assert_eq!(run("100% $HOME plain").unwrap(), None);
        assert_eq!(
            run("cost: $5 and ${KAFKA_BROKERS}").unwrap().unwrap(),
            "cost: $5 and a:9092,b:9092"
        );
    }

    #[test]
    fn double_dollar_escapes() {
        assert_eq!(run("$${NOPE}").unwrap().unwrap(), "${NOPE}");
    }

    #[test]
    fn unset_variables_are_errors_that_point_at_them() {
        let err = run("abc ${NOPE}").unwrap_err();
        assert_eq!(err.offset, 4);
        assert!(err.message.contains("`NOPE` is not set"));
        assert_eq!(run("${oops").unwrap_err().offset, 0);
        assert!(run("${A B}").is_err());
    }
}
