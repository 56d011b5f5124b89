//! When to look again: inotify on the directories the patterns live in,
//! naming the files written to and flagging creations, renames and
//! overflows for a rescan; the periodic scan is the fallback because inotify
//! can overflow or miss events on some filesystems.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// Wakes the tail loop: `notify` for new data, `rescan` set when files
/// appeared, moved or went away, `changed` the paths inotify named since the
/// last read round (files at their end are read again only when named here,
/// or when a scan sees their size change).
#[derive(Debug, Default)]
pub struct Wake {
    pub notify: Notify,
    pub rescan: AtomicBool,
    pub changed: Mutex<HashSet<PathBuf>>,
}

impl Wake {
    /// The paths named since the last call.
    pub fn take_changed(&self) -> HashSet<PathBuf> {
        std::mem::take(&mut *self.changed.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Watches the directories the patterns live in. `None` when inotify is not
/// available (limits reached, unsupported filesystem) or a directory cannot
/// be watched: the periodic rescan still finds everything, only later, and
/// files are polled for new data.
pub fn watch(patterns: &[String], wake: Arc<Wake>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        let rescan = match event {
            Ok(event) => {
                if !event.paths.is_empty() {
                    let mut changed = wake.changed.lock().unwrap_or_else(|p| p.into_inner());
                    changed.extend(event.paths);
                }
                !matches!(
                    event.kind,
                    EventKind::Modify(notify::event::ModifyKind::Data(_)) | EventKind::Access(_)
                )
            }
            // An overflow or error: look at everything again.
            Err(_) => true,
        };
        if rescan {
            wake.rescan.store(true, Ordering::Release);
        }
        wake.notify.notify_one();
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot watch for new files; relying on the periodic scan.");
            return None;
        }
    };
    for pattern in patterns {
        let (dir, recursive) = watch_root(pattern);
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        if let Err(e) = watcher.watch(&dir, mode) {
            tracing::warn!(dir = %dir.display(), error = %e, "Cannot watch directory; polling its files and relying on the periodic scan for it.");
            return None;
        }
    }
    Some(watcher)
}

/// The deepest directory of `pattern` without glob characters, and whether
/// the pattern has globs in its directories (then the watch is recursive).
pub(super) fn watch_root(pattern: &str) -> (PathBuf, bool) {
    let path = Path::new(pattern);
    let is_glob = |s: &str| s.contains(['*', '?', '[']);
    let mut root = PathBuf::new();
    let mut components: Vec<_> = path.components().collect();
    components.pop();
    let mut recursive = false;
    for c in components {
        let text = c.as_os_str().to_string_lossy();
        if is_glob(&text) {
            recursive = true;
            break;
        }
        root.push(c);
    }
    if root.as_os_str().is_empty() {
        root.push(".");
    }
    (root, recursive)
}

/// How long the tail loop may sleep before the next scan is due.
pub fn until(next: Instant) -> Duration {
    next.saturating_duration_since(std::time::Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_root_is_the_deepest_literal_directory() {
        assert_eq!(
            watch_root("/var/log/httpd/access_log*"),
            (PathBuf::from("/var/log/httpd"), false)
        );
        assert_eq!(
            watch_root("/var/log/httpd/*/error_log"),
            (PathBuf::from("/var/log/httpd"), true)
        );
    }
}
