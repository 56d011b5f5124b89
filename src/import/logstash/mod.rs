//! Logstash pipeline configs read into a [`Config`] tree with positions: one
//! file, or a directory of them read in lexical order and taken as one, as
//! Logstash concatenates `conf.d`. What the tree means for logpipe is the
//! converter's business ([`crate::import::convert`]).

pub mod ast;
pub mod parser;

use std::path::{Path, PathBuf};

use crate::config::{Diagnostic, Source};
pub use ast::*;

/// The files read, and their sections in order. A node's `file` (sections)
/// indexes `sources`; offsets inside a section are in that file.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    pub sources: Vec<Source>,
    pub config: Config,
}

/// Reads `path` (a file, or a directory whose files are taken in lexical
/// order) and adds its files and sections to `into`.
pub fn read(path: &Path, support_escapes: bool, into: &mut Pipeline) -> Result<(), Diagnostic> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| Source::new(path, "").error(format!("cannot read directory: {e}")))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Source::new(path, "").error("no Logstash config files in this directory"));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Source::new(&file, "").error(format!("cannot read: {e}")))?;
        let source = Source::new(&file, text);
        let index = into.sources.len();
        let config = parser::parse(&source.text, index, support_escapes)
            .map_err(|e| source.error_at(e.offset, e.message))?;
        into.sources.push(source);
        into.config.sections.extend(config.sections);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
