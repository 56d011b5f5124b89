//! The `[[test]]` cases of a pipeline file, validated with the file (run by
//! `logpipe test`, ignored by `logpipe run`).
//!
//! ```toml
//! [[test]]
//! name = "a combined line"                  # optional
//! input = '127.0.0.1 - - [26/Dec/2016:16:18:09 +0000] "GET / HTTP/1.1" 200 491 "-" "Wget/1.13.4"'
//! expect = { "[http][response][status_code]" = 200, "[url][original]" = "/" }
//! absent = ["[user][name]"]
//! ```

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use crate::config::ConfigCx;
use crate::event::FieldRef;

/// One `[[test]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseConfig {
    /// Shown in the report; default: `test N`.
    pub name: Option<String>,
    /// The log line fed to the pipeline (without its newline).
    pub input: String,
    /// Field reference → expected value.
    #[serde(default)]
    pub expect: Map<String, Value>,
    /// Fields that must not exist.
    #[serde(default)]
    pub absent: Vec<Spanned<String>>,
    /// The filters must drop the event (default false).
    #[serde(default)]
    pub dropped: bool,
}

/// A validated `[[test]]` case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub input: String,
    pub expect: Vec<(FieldRef, crate::event::Value)>,
    pub absent: Vec<FieldRef>,
    pub dropped: bool,
}

/// Validates the `[[test]]` list of a pipeline file.
pub fn cases(configs: Vec<Spanned<CaseConfig>>, cx: &mut ConfigCx<'_>) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, config) in configs.into_iter().enumerate() {
        let span = config.span();
        let config = config.into_inner();
        let mut ok = true;
        let mut expect = Vec::new();
        for (key, value) in config.expect {
            match FieldRef::parse(&key) {
                Ok(field) => expect.push((field, value.into())),
                Err(e) => {
                    cx.error(&span, format!("invalid field `{key}` in expect: {e}"));
                    ok = false;
                }
            }
        }
        let absent: Vec<FieldRef> = config.absent.iter().filter_map(|f| cx.field(f)).collect();
        ok &= absent.len() == config.absent.len();
        if ok {
            out.push(Case {
                name: config.name.unwrap_or_else(|| format!("test {}", i + 1)),
                input: config.input,
                expect,
                absent,
                dropped: config.dropped,
            });
        }
    }
    out
}
