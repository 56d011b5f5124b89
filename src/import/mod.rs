//! `logpipe import`: Filebeat and Logstash configs read with positions
//! ([`yaml`] for filebeat.yml, [`logstash`] for pipeline configs) and
//! converted into logpipe pipeline files ([`convert`]), one per log source;
//! what cannot be converted is listed as a warning pointing at its text.
//!
//! Exit codes: 0 everything converted, 1 something was left out (each
//! warning says what to do instead), 2 an input could not be read or
//! parsed, or a file could not be written.

pub mod convert;
pub mod logstash;
pub mod vars;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{Diagnostic, Severity, Source};

/// Something was left out of the conversion.
pub const EXIT_LEFT_OUT: u8 = 1;
/// An input could not be read or parsed.
pub const EXIT_UNREADABLE: u8 = 2;

/// What `logpipe import` was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub filebeat: PathBuf,
    pub logstash: Vec<PathBuf>,
    pub out: PathBuf,
    pub dry_run: bool,
    /// Replace pipeline files that exist in `out`.
    pub force: bool,
    /// Logstash's `config.support_escapes`.
    pub support_escapes: bool,
}

/// Reads and converts; the files to write and every diagnostic.
pub fn import(request: &Request) -> Result<convert::Imported, Diagnostic> {
    let text = std::fs::read_to_string(&request.filebeat)
        .map_err(|e| Source::new(&request.filebeat, "").error(format!("cannot read: {e}")))?;
    let source = Source::new(&request.filebeat, text);
    let root = yaml::parse(&source)?;
    let logstash = if request.logstash.is_empty() {
        None
    } else {
        let mut pipeline = logstash::Pipeline::default();
        for path in &request.logstash {
            logstash::read(path, request.support_escapes, &mut pipeline)?;
        }
        Some(pipeline)
    };
    Ok(convert::convert(
        &source,
        &root,
        logstash.as_ref(),
        &request.out,
    ))
}

/// `logpipe import`.
pub fn run(request: &Request) -> ExitCode {
    let imported = match import(request) {
        Ok(imported) => imported,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    for d in &imported.diagnostics {
        eprintln!("{d}");
    }
    if imported.has_errors() {
        eprintln!("Nothing was written.");
        return ExitCode::from(EXIT_UNREADABLE);
    }
    if request.dry_run {
        for f in &imported.files {
            println!("# ==> {} <==", f.path.display());
            print!("{}", f.text);
            println!();
        }
    } else if let Err(e) = write(&imported.files, &request.out, request.force) {
        eprintln!("{e}");
        return ExitCode::from(EXIT_UNREADABLE);
    }
    let warnings = imported
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    if warnings > 0 {
        eprintln!(
            "{warnings} warning(s): {} pipeline file(s) {}, with what is listed above left out.",
            imported.files.len(),
            if request.dry_run {
                "printed"
            } else {
                "written"
            }
        );
        ExitCode::from(EXIT_LEFT_OUT)
    } else {
        ExitCode::SUCCESS
    }
}

fn write(files: &[convert::Written], out: &Path, force: bool) -> Result<(), Diagnostic> {
    std::fs::create_dir_all(out)
        .map_err(|e| Source::new(out, "").error(format!("cannot create the directory: {e}")))?;
    if !force {
        if let Some(f) = files.iter().find(|f| f.path.exists()) {
            return Err(Source::new(&f.path, "").error(
                "exists: nothing was written (--force replaces it, or choose another --out)",
            ));
        }
    }
    for f in files {
        std::fs::write(&f.path, &f.text)
            .map_err(|e| Source::new(&f.path, "").error(format!("cannot write: {e}")))?;
        println!("wrote {}", f.path.display());
    }
    Ok(())
}
