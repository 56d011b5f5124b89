//! `logpipe generate-docs --out DIR` (feature `gen-docs`, hidden): the man
//! pages and shell completions the packages ship, generated from the real
//! command line so they never drift from it.
//!
//! Layout under DIR: `man/logpipe.1` and one page per subcommand
//! (`logpipe-run.1`, …), `completions/logpipe.bash`, `completions/_logpipe`
//! (zsh), `completions/logpipe.fish`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;

/// Writes the man pages and completions under `out`.
pub fn generate(out: &Path) -> anyhow::Result<ExitCode> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    clap_mangen::generate_to(Cli::command(), &man)
        .with_context(|| format!("writing the man pages into {}", man.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut Cli::command(), "logpipe", &completions)
            .with_context(|| {
                format!(
                    "writing the {shell} completion into {}",
                    completions.display()
                )
            })?;
        tracing::debug!(shell = %shell, path = %path.display(), "completion written");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pages_and_completions_of_the_real_cli() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("man/logpipe.1")).unwrap();
        assert!(page.contains("logpipe"), "{page}");
        // Every visible subcommand has its page; the hidden one has none.
        for sub in [
            "run", "check", "test", "setup", "status", "tap", "top", "topics",
        ] {
            assert!(
                dir.path().join(format!("man/logpipe-{sub}.1")).is_file(),
                "{sub}"
            );
        }
        assert!(!dir.path().join("man/logpipe-generate-docs.1").exists());
        let bash = std::fs::read_to_string(dir.path().join("completions/logpipe.bash")).unwrap();
        assert!(bash.contains("--role"), "the run flags are completed");
        assert!(dir.path().join("completions/_logpipe").is_file());
        assert!(dir.path().join("completions/logpipe.fish").is_file());
    }
}
