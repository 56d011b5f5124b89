//! `${VAR}` references of Filebeat and Logstash configs, carried into
//! logpipe's spelling so they are still resolved from the environment when
//! logpipe loads the file: `${VAR:default}` becomes `${VAR:-default}`.
//! Filebeat's `${VAR:?message}` (an error when unset) becomes `${VAR}`,
//! which is an error in logpipe too. A lone `$` stays as it is.

/// `text` with every `${…}` in logpipe's spelling.
pub fn to_logpipe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let body_and_rest = &rest[at + 2..];
        let Some(end) = body_and_rest.find('}') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let body = &body_and_rest[..end];
        out.push_str("${");
        match body.split_once(':') {
            Some((name, default)) if default.starts_with('-') => {
                // Already logpipe's (or a default starting with `-`: the same text).
                out.push_str(name);
                out.push(':');
                out.push_str(default);
            }
            Some((name, default)) if default.starts_with('?') => out.push_str(name),
            Some((name, default)) => {
                out.push_str(name);
                out.push_str(":-");
                out.push_str(default);
            }
            None => out.push_str(body),
        }
        out.push('}');
        rest = &body_and_rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::to_logpipe;

    #[test]
    fn defaults_take_logpipes_spelling() {
        assert_eq!(to_logpipe("${KAFKA_HOSTS}"), "${KAFKA_HOSTS}");
        assert_eq!(to_logpipe("${ES:http://es:9200}"), "${ES:-http://es:9200}");
        assert_eq!(to_logpipe("a-${X:1}-${Y}-b"), "a-${X:-1}-${Y}-b");
        assert_eq!(to_logpipe("${X:?must be set}"), "${X}");
        assert_eq!(to_logpipe("no vars, $5"), "no vars, $5");
        assert_eq!(to_logpipe("${unclosed"), "${unclosed");
    }

    #[test]
    fn the_result_resolves_as_the_original_would() {
        let lookup = |name: &str| (name == "SET").then(|| "value".to_owned());
        let resolve = |text: &str| {
            crate::config::interpolate::interpolate(&to_logpipe(text), &lookup)
                .unwrap()
                .unwrap()
        };
        assert_eq!(resolve("${SET:d}"), "value");
        assert_eq!(resolve("${UNSET:d:9200}"), "d:9200");
    }
}
