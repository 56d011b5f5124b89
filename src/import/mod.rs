//! `logpipe import`: Filebeat and Logstash configs read with positions
//! ([`yaml`] for filebeat.yml, [`logstash`] for pipeline configs) and
//! converted into logpipe pipeline files ([`convert`]), one per log source;
//! what cannot be converted is listed as a warning pointing at its text.
//!
//! With `--filebeat-registry`, Filebeat's registry seeds the checkpoints of
//! the pipelines' file inputs ([`registry`]): the cutover.
//!
//! Exit codes: 0 everything converted, 1 something was left out (each
//! warning says what to do instead), 2 an input could not be read or
//! parsed, Filebeat still runs, or a file could not be written.

pub mod convert;
pub mod logstash;
pub mod registry;
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
    /// filebeat.yml, when the configs are imported.
    pub filebeat: Option<PathBuf>,
    pub logstash: Vec<PathBuf>,
    pub out: PathBuf,
    pub dry_run: bool,
    /// Replace pipeline files that exist in `out`.
    pub force: bool,
    /// Logstash's `config.support_escapes`.
    pub support_escapes: bool,
    /// Filebeat's registry, when checkpoints are seeded from it.
    pub registry: Option<PathBuf>,
    /// Where logpipe keeps its checkpoints (with `registry`).
    pub state_dir: Option<PathBuf>,
    /// The pipelines to seed when the configs are not imported with them.
    pub pipelines: Vec<PathBuf>,
}

/// Reads and converts; the files to write and every diagnostic.
pub fn import(filebeat: &Path, request: &Request) -> Result<convert::Imported, Diagnostic> {
    let text = std::fs::read_to_string(filebeat)
        .map_err(|e| Source::new(filebeat, "").error(format!("cannot read: {e}")))?;
    let source = Source::new(filebeat, text);
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
    match run_checked(request) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_UNREADABLE)
        }
    }
}

/// What to write and print, decided before anything is written: a refusal
/// (Filebeat running, a checkpoint in the way) leaves every file as it was.
fn run_checked(request: &Request) -> Result<u8, Diagnostic> {
    let mut warnings = 0;
    let imported = match &request.filebeat {
        Some(filebeat) => {
            let imported = import(filebeat, request)?;
            for d in &imported.diagnostics {
                eprintln!("{d}");
            }
            if imported.has_errors() {
                eprintln!("Nothing was written.");
                return Ok(EXIT_UNREADABLE);
            }
            warnings += imported
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .count();
            Some(imported)
        }
        None => None,
    };
    let seeding = match (&request.registry, &request.state_dir) {
        (Some(dir), Some(state_dir)) => {
            let plan = plan_seeding(dir, state_dir, imported.as_ref(), request)?;
            warnings += plan.warnings();
            Some(plan)
        }
        (Some(_), None) => {
            return Err(Source::new("--filebeat-registry", "")
                .error("needs --state-dir: where logpipe keeps its checkpoints"))
        }
        _ => None,
    };
    if let Some(imported) = &imported {
        if request.dry_run {
            for f in &imported.files {
                println!("# ==> {} <==", f.path.display());
                print!("{}", f.text);
                println!();
            }
        } else {
            if let Some(plan) = &seeding {
                registry::seed::check_writable(plan, request.force)?;
            }
            write(&imported.files, &request.out, request.force)?;
        }
    }
    if let Some(plan) = &seeding {
        if !request.dry_run {
            registry::seed::check_writable(plan, request.force)?;
            registry::seed::write(plan)?;
            for (path, entries) in &plan.writes {
                println!("wrote {} ({} file(s))", path.display(), entries.len());
            }
        }
        eprintln!(
            "{} file(s) {} at Filebeat's offsets, {} listed to look at.",
            plan.seeded(),
            if request.dry_run {
                "would continue"
            } else {
                "continue"
            },
            plan.warnings()
        );
    }
    if warnings > 0 {
        let config_warnings = imported.as_ref().map_or(0, |i| {
            i.diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .count()
        });
        if let Some(imported) = imported.as_ref().filter(|_| config_warnings > 0) {
            eprintln!(
                "{config_warnings} warning(s): {} pipeline file(s) {}, with what is listed above left out.",
                imported.files.len(),
                if request.dry_run { "printed" } else { "written" }
            );
        }
        Ok(EXIT_LEFT_OUT)
    } else {
        Ok(0)
    }
}

/// Reads Filebeat's registry and plans the checkpoints of the imported
/// pipelines, or of those in `request.pipelines`; prints the table.
fn plan_seeding(
    dir: &Path,
    state_dir: &Path,
    imported: Option<&convert::Imported>,
    request: &Request,
) -> Result<registry::seed::Plan, Diagnostic> {
    let read = registry::load(dir)?;
    eprintln!(
        "{}: {} ({} file state(s))",
        read.from.display(),
        read.format.describe(),
        read.entries.len()
    );
    for n in &read.notes {
        eprintln!("{n}");
    }
    let pipelines = match imported {
        Some(imported) => imported
            .files
            .iter()
            .filter_map(|f| {
                let source = Source::new(&f.path, f.text.clone());
                crate::pipeline::parse(&source, &convert::check_env).0
            })
            .collect(),
        None => {
            let paths = if request.pipelines.is_empty() {
                vec![PathBuf::from(crate::pipeline::DEFAULT_PIPELINE_DIR)]
            } else {
                request.pipelines.clone()
            };
            let loaded = crate::pipeline::load(&paths, &crate::config::process_env);
            if let Some(e) = loaded
                .diagnostics
                .iter()
                .find(|d| d.severity == Severity::Error)
            {
                return Err(e.clone());
            }
            loaded.pipelines
        }
    };
    let targets = registry::seed::targets(&pipelines, state_dir);
    if targets.is_empty() {
        return Err(Source::new(dir, "").error(
            "no pipeline has a file input with checkpoints to seed: pass the pipelines with --pipelines, or import the configs with --filebeat",
        ));
    }
    let mut plan = registry::seed::plan(&read.entries, &targets, crate::host::name());
    plan.read_warnings = read.notes.len();
    print!("{}", registry::seed::table(&plan.rows));
    Ok(plan)
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
