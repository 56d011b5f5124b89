//! Whether Filebeat still runs on the data directory: a registry read while
//! it runs is out of date the moment it is read, and the lines Filebeat
//! ships after it would be shipped again by logpipe.
//!
//! Filebeat takes `<path.data>/filebeat.lock` with a non-blocking exclusive
//! `flock` (libbeat's `locks`, gofrs/flock `TryLock`) and never deletes it,
//! so the file alone means nothing: the lock held does. Some 7.x/8.x
//! releases wrote a pid file there instead (JSON with `"pid"`, created
//! exclusively and left behind by a crash): that counts as running while
//! the pid is alive.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::config::{Diagnostic, Source};

/// An error when `lock` is held by a running Filebeat.
pub fn refuse_if_running(lock: &Path) -> Result<(), Diagnostic> {
    let file = match File::open(lock) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Source::new(lock, "").error(format!(
                "cannot open Filebeat's lock to see whether it runs: {e}"
            )))
        }
    };
    if held(&file) {
        return Err(Source::new(lock, "").error(
            "Filebeat is running (it holds this lock): stop it first (systemctl stop filebeat), then import its registry — offsets read now would be behind what it ships next",
        ));
    }
    if let Some(pid) = pid_of(lock) {
        if alive(pid) {
            return Err(Source::new(lock, "").error(format!(
                "Filebeat is running (this lock names pid {pid}, which is alive): stop it first, then import its registry (if pid {pid} is not Filebeat, the lock is stale: remove it)"
            )));
        }
    }
    Ok(())
}

/// Whether another process holds an exclusive `flock` on `file`.
fn held(file: &File) -> bool {
    // SAFETY: flock on a descriptor this function's caller owns; no memory
    // is shared with the call.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if taken == 0 {
        // SAFETY: as above; releases the lock just taken.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return false;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// The pid of a pid-file lock (`{"pid":1234,…}`).
fn pid_of(lock: &Path) -> Option<i32> {
    let text = std::fs::read(lock).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    value
        .get("pid")?
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
}

fn alive(pid: i32) -> bool {
    pid > 0 && pid as u32 != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_and_a_released_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("filebeat.lock");
        std::fs::write(&path, b"").unwrap();
        assert!(refuse_if_running(&path).is_ok());
        // flock locks belong to the open file description: a second open
        // in this process conflicts with it as Filebeat's would.
        let holder = File::open(&path).unwrap();
        assert_eq!(
            unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        let err = refuse_if_running(&path).unwrap_err();
        assert!(err.to_string().contains("Filebeat is running"), "{err}");
        assert!(err.to_string().contains("filebeat.lock"), "{err}");
        drop(holder);
        assert!(refuse_if_running(&path).is_ok());
        assert!(refuse_if_running(&dir.path().join("none.lock")).is_ok());
    }

    #[test]
    fn a_pid_file_lock_counts_while_its_pid_lives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("filebeat.lock");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(
            &path,
            format!(r#"{{"pid":{},"write_time":"x"}}"#, child.id()),
        )
        .unwrap();
        let err = refuse_if_running(&path).unwrap_err();
        assert!(err.to_string().contains("names pid"), "{err}");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(refuse_if_running(&path).is_ok());
    }
}
