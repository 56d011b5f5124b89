//! Small value types shared by stage settings.

use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// A duration written as `"5s"`, `"250ms"`, `"1m 30s"` (humantime), or a
/// number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a duration such as \"5s\", \"250ms\" or \"1m\", or a number of seconds",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                humantime::parse_duration(v.trim())
                    .map(Seconds)
                    .map_err(|e| {
                        E::custom(format!(
                            "invalid duration `{v}`: {e} (expected e.g. \"5s\", \"250ms\", \"1m\")"
                        ))
                    })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(|s| Seconds(Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(Duration::from_secs(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Duration::try_from_secs_f64(v)
                    .map(Seconds)
                    .map_err(|_| E::custom("invalid duration"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of strings given either as a TOML list or as one comma-separated
/// string; list items are split on commas too, because Filebeat users write
/// `hosts: ["a:9092,b:9092,c:9092"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of strings or one comma-separated string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(split(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    out.extend(split(&item));
                }
                Ok(StringList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A secret setting (a password, an API key): `Debug` and `Display` show
/// `<redacted>`, so it cannot leak into logs, errors or `logpipe check` output.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn split(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct T {
        hosts: StringList,
        wait: Seconds,
    }

    #[test]
    fn host_lists_accept_lists_and_comma_joined_strings() {
        let a: T =
            toml::from_str("hosts = [\"a:9092,b:9092\", \"c:9092\"]\nwait = \"250ms\"").unwrap();
        assert_eq!(a.hosts.0, ["a:9092", "b:9092", "c:9092"]);
        assert_eq!(a.wait.0, Duration::from_millis(250));
        let b: T = toml::from_str("hosts = \"a:9092, b:9092\"\nwait = 3").unwrap();
        assert_eq!(b.hosts.0, ["a:9092", "b:9092"]);
        assert_eq!(b.wait.0, Duration::from_secs(3));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s: Secret = toml::from_str::<toml::Table>("p = \"hunter2\"").unwrap()["p"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn bad_durations_say_what_is_expected() {
        let err = toml::from_str::<T>("hosts = []\nwait = \"soon\"").unwrap_err();
        assert!(err.message().contains("expected e.g."), "{err}");
    }
}
