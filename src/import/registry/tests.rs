//! The registry formats, read from the fixtures in
//! tests/fixtures/import/registry (written by hand from Filebeat's formats),
//! and the matcher and the plan on real files.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::matching::{judge, Verdict};
use super::*;
use crate::input::file::fingerprint::{identity_of, Fingerprint, Inode};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import/registry")
        .join(name)
}

fn native(inode: u64, device: u64) -> FbIdentity {
    FbIdentity::Native { inode, device }
}

fn find<'a>(read: &'a Read, key: &str) -> &'a FbEntry {
    read.entries
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no {key} in {:#?}", read.entries))
}

#[test]
fn the_6x_registry_file_is_read_from_the_data_dir_or_itself() {
    for path in [fixture("6x"), fixture("6x/registry")] {
        let read = load(&path).unwrap();
        assert_eq!(read.format, Format::Legacy);
        assert_eq!(read.entries.len(), 2, "{:#?}", read.entries);
        let e = find(&read, "#0");
        assert_eq!(e.source, Path::new("/var/log/httpd/access_log"));
        assert_eq!(e.offset, 10240);
        assert_eq!(e.identity, native(1001, 2049));
        assert_eq!(e.input, FbInput::Log);
        assert_eq!(e.ttl, Some(-1));
        assert_eq!(
            e.timestamp.as_deref(),
            Some("2018-09-14T10:21:03.532947157Z")
        );
        assert_eq!(
            find(&read, "#1").source,
            Path::new("/var/log/httpd/access_log.1")
        );
        // The third state has no offset: said, not guessed.
        assert_eq!(read.notes.len(), 1);
        let note = read.notes[0].to_string();
        assert!(note.contains("state #2 left out: no \"offset\""), "{note}");
        assert!(note.contains("6x/registry: warning:"), "{note}");
    }
}

#[test]
fn the_7_0_data_json_is_read_with_meta_version_0() {
    for path in [
        fixture("7.0"),
        fixture("7.0/registry"),
        fixture("7.0/registry/filebeat"),
    ] {
        let read = load(&path).unwrap();
        assert_eq!(read.format, Format::Version0);
        assert_eq!(read.entries.len(), 2);
        assert_eq!(find(&read, "#0").offset, 5120);
        assert_eq!(find(&read, "#0").identity, native(2001, 64769));
        assert_eq!(find(&read, "#1").ttl, Some(0));
    }
}

#[test]
fn the_memlog_store_replays_its_log_over_the_newest_snapshot() {
    let read = load(&fixture("8.x")).unwrap();
    assert_eq!(read.format, Format::Memlog);
    let keys: Vec<&str> = read.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "filebeat::logs::native::3001-2049",
            "filebeat::logs::native::3003-2049",
            "filestream::httpd-error::native::3004-2049",
            "filestream::my::input::fingerprint::3b5d3c7d207e37dceeedd301e35e2e58408f4bd5d4b6d4e0bd7c8e3e2d1c0b9a",
            "filestream::httpd-error::native::3005-2049",
        ],
        "the journald cursor is no file, 3002 was removed"
    );
    // Operation 3 is the snapshot's own: skipped. Operation 4 is the
    // rotation Filebeat saw: the same inode under the new name.
    let rotated = find(&read, "filebeat::logs::native::3001-2049");
    assert_eq!(rotated.source, Path::new("/var/log/httpd/access_log.1"));
    assert_eq!(rotated.offset, 8192);
    // Filebeat saw 3003 truncated and went back to 0.
    assert_eq!(find(&read, "filebeat::logs::native::3003-2049").offset, 0);
    let stream = find(&read, "filestream::httpd-error::native::3004-2049");
    assert_eq!(
        stream.input,
        FbInput::Filestream {
            id: "httpd-error".into()
        }
    );
    assert_eq!(stream.identity, native(3004, 2049));
    assert_eq!(stream.source, Path::new("/var/log/httpd/error_log"));
    assert_eq!(stream.offset, 2048);
    assert_eq!(stream.ttl, Some(1_800_000_000_000));
    let fp = &read.entries[3];
    assert_eq!(
        fp.input,
        FbInput::Filestream {
            id: "my::input".into()
        }
    );
    assert_eq!(
        fp.identity,
        FbIdentity::Fingerprint(
            "3b5d3c7d207e37dceeedd301e35e2e58408f4bd5d4b6d4e0bd7c8e3e2d1c0b9a".into()
        )
    );
    assert_eq!(fp.offset, 1500);
    // Nothing acknowledged yet: from 0, as Filebeat would.
    assert_eq!(read.entries[4].offset, 0);
    // active.dat names the snapshot by Filebeat's own path: it agrees.
    assert!(read.notes.is_empty(), "{:?}", read.notes);
}

#[test]
fn a_log_cut_short_keeps_the_operations_before_it_and_says_so() {
    let read = load(&fixture("cut/registry")).unwrap();
    assert_eq!(read.entries.len(), 1);
    assert_eq!(read.entries[0].offset, 300);
    assert_eq!(read.notes.len(), 1);
    let note = read.notes[0].to_string();
    assert!(
        note.contains("log.json: warning: operation 2 cut short"),
        "{note}"
    );
}

#[test]
fn a_gap_in_the_operation_ids_ends_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("registry/filebeat");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("meta.json"), r#"{"version":"1"}"#).unwrap();
    std::fs::write(home.join("5.json"), "[]").unwrap();
    let set = |id: u64, offset: u64| {
        format!(
            "{{\"op\":\"set\",\"id\":{id}}}\n{{\"K\":\"filebeat::logs::native::1-2\",\"V\":{{\"source\":\"/x\",\"offset\":{offset},\"FileStateOS\":{{\"inode\":1,\"device\":2}}}}}}\n"
        )
    };
    std::fs::write(home.join("log.json"), set(6, 10) + &set(8, 20)).unwrap();
    let read = load(dir.path()).unwrap();
    assert_eq!(read.entries[0].offset, 10, "upper-case K and V read too");
    assert!(read.notes[0].message.contains("operation 8 follows 6"));
}

#[test]
fn an_unknown_version_is_refused_with_the_file_named() {
    let err = load(&fixture("unknown")).unwrap_err().to_string();
    assert!(
        err.contains("unknown/registry/filebeat/meta.json: error: unknown registry version \"2\""),
        "{err}"
    );
    let err = load(&fixture("none")).unwrap_err().to_string();
    assert!(err.contains("none: error: no such file"), "{err}");
    let err = load(&fixture("")).unwrap_err().to_string();
    assert!(err.contains("no Filebeat registry here"), "{err}");
}

#[test]
fn a_registry_is_not_read_while_filebeat_holds_its_lock() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("registry/filebeat");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("meta.json"), r#"{"version":"1"}"#).unwrap();
    let lock = dir.path().join("filebeat.lock");
    std::fs::write(&lock, "").unwrap();
    let holder = std::fs::File::open(&lock).unwrap();
    assert_eq!(
        unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    // Pointed at the registry path, the lock one level up is found.
    let err = load(&dir.path().join("registry")).unwrap_err().to_string();
    assert!(
        err.contains("filebeat.lock: error: Filebeat is running"),
        "{err}"
    );
    drop(holder);
    assert!(load(&dir.path().join("registry")).is_ok());
}

/// A log input entry for the file at `path` as it is now.
fn entry_for(path: &Path, offset: u64) -> FbEntry {
    let meta = std::fs::metadata(path).unwrap();
    FbEntry {
        key: format!("filebeat::logs::native::{}-{}", meta.ino(), meta.dev()),
        input: FbInput::Log,
        source: path.to_path_buf(),
        offset,
        identity: native(meta.ino(), meta.dev()),
        ttl: Some(-1),
        timestamp: None,
    }
}

fn lines(n: usize) -> String {
    (0..n).map(|i| format!("line {i:04}\n")).collect()
}

fn skip_reason(v: Verdict) -> String {
    match v {
        Verdict::Skip { why, .. } => why,
        Verdict::Continue(m) => panic!("matched {m:?}"),
    }
}

#[test]
fn the_matcher_follows_rotations_and_refuses_truncations_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access_log");
    std::fs::write(&log, lines(100)).unwrap();
    let at = 10 * 10; // just after line 9
    let entry = entry_for(&log, at);
    match judge(&entry, &[]) {
        Verdict::Continue(m) => {
            assert_eq!(m.path, log);
            assert!(!m.renamed);
            assert_eq!(m.size, 1000);
        }
        other => panic!("{other:?}"),
    }
    // Rotated: the same inode under a new name, found in the directory.
    let rotated = dir.path().join("access_log.1");
    std::fs::rename(&log, &rotated).unwrap();
    std::fs::write(&log, lines(3)).unwrap();
    match judge(&entry, &[]) {
        Verdict::Continue(m) => {
            assert_eq!(m.path, rotated);
            assert!(m.renamed);
        }
        other => panic!("{other:?}"),
    }
    // Not on a line end: some other file on a reused inode.
    let mid = entry_for(&rotated, 15);
    assert!(skip_reason(judge(&mid, &[])).contains("not just after a line"));
    // Truncated below Filebeat's offset.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&rotated)
        .unwrap()
        .set_len(50)
        .unwrap();
    let why = skip_reason(judge(&entry, &[]));
    assert!(
        why.starts_with("truncated: Filebeat's offset 100 is past the end (50 bytes)"),
        "{why}"
    );
    // The same inode on another device number: not taken.
    let renumbered = FbEntry {
        identity: native(std::fs::metadata(&log).unwrap().ino(), 12345),
        source: log.clone(),
        offset: 0,
        ..entry.clone()
    };
    match judge(&renumbered, &[]) {
        Verdict::Skip { why, warn, .. } => {
            assert!(why.contains("instead of Filebeat's 12345"), "{why}");
            assert!(warn);
        }
        other => panic!("{other:?}"),
    }
    // Gone.
    std::fs::remove_file(&rotated).unwrap();
    match judge(&entry, &[]) {
        Verdict::Skip { why, warn, .. } => {
            assert!(why.contains("its inode is gone"), "{why}");
            assert!(!warn, "nothing is left to read");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_fingerprint_entry_matches_the_file_with_filebeats_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ssl_access_log");
    std::fs::write(&log, lines(200)).unwrap();
    let hex = matching::filebeat_fingerprint(&log).unwrap();
    assert_eq!(hex.len(), 64);
    let moved = dir.path().join("ssl_access_log-20261203");
    std::fs::rename(&log, &moved).unwrap();
    let entry = FbEntry {
        key: format!("filestream::ssl::fingerprint::{hex}"),
        input: FbInput::Filestream { id: "ssl".into() },
        source: log.clone(),
        offset: 500,
        identity: FbIdentity::Fingerprint(hex),
        ttl: None,
        timestamp: None,
    };
    match judge(&entry, &[]) {
        Verdict::Continue(m) => assert_eq!(m.path, moved),
        other => panic!("{other:?}"),
    }
    let other = FbEntry {
        identity: FbIdentity::Fingerprint("00".repeat(32)),
        ..entry
    };
    assert!(skip_reason(judge(&other, &[])).contains("fingerprint"));
}

fn pipeline(dir: &Path, paths: &str) -> crate::pipeline::Pipeline {
    let text = format!(
        "name = \"tail\"\n[[input]]\ntype = \"file\"\nid = \"t\"\npaths = [{paths}]\n[[output]]\ntype = \"stdout\"\n"
    );
    let source = crate::config::Source::new(dir.join("tail.toml"), text);
    let (p, d) = crate::pipeline::parse(&source, &|_| None);
    p.unwrap_or_else(|| panic!("{d:?}"))
}

#[test]
fn the_plan_seeds_the_inputs_that_follow_the_files_under_their_identity() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access_log");
    let error = dir.path().join("error_log");
    let other = dir.path().join("other.log");
    std::fs::write(&access, lines(200)).unwrap();
    std::fs::write(&error, lines(5)).unwrap();
    std::fs::write(&other, lines(5)).unwrap();
    let done = dir.path().join("done.log");
    std::fs::write(&done, lines(5)).unwrap();
    let fresh = dir.path().join("access_log.new");
    std::fs::write(&fresh, lines(1)).unwrap();
    let glob = format!(
        "\"{}/access_log*\", \"{}\"",
        dir.path().display(),
        error.display()
    );
    let state = dir.path().join("state");
    let targets = seed::targets(&[pipeline(dir.path(), &glob)], &state);
    assert_eq!(targets[0].registry, state.join("checkpoints/tail/t.json"));
    let stale = FbEntry {
        offset: 10,
        key: "stale".into(),
        ..entry_for(&access, 0)
    };
    let entries = [
        entry_for(&access, 1000),
        stale,
        entry_for(&error, 50),
        entry_for(&other, 20),
        entry_for(&done, 50),
    ];
    let plan = seed::plan(&entries, &targets, "web1");
    let table = seed::table(&plan.rows);
    let row = |p: &Path| {
        plan.rows
            .iter()
            .find(|r| r.file == p && !r.action.contains("another"))
            .unwrap_or_else(|| panic!("{table}"))
    };
    assert_eq!(row(&access).action, "continue at 1000 [tail/t]", "{table}");
    assert_eq!(
        row(&error).action,
        "continue at 50, read to its end [tail/t]"
    );
    assert_eq!(
        row(&other).action,
        "skip: no file input of the pipelines follows this path (30 bytes Filebeat had not shipped are not read)"
    );
    assert!(row(&other).warn);
    assert!(row(&done)
        .action
        .ends_with("(Filebeat had read it to its end)"));
    assert!(!row(&done).warn, "nothing of it is lost");
    assert!(row(&fresh)
        .action
        .starts_with("read from the start: not in Filebeat's registry"));
    assert!(
        table.contains("another Filebeat entry for this file is used (this one: stale)"),
        "{table}"
    );
    assert!(table.starts_with("FILE"), "{table}");
    assert_eq!(plan.warnings(), 1);
    assert_eq!(plan.writes.len(), 1);
    let (path, seeded) = &plan.writes[0];
    assert_eq!(path, &targets[0].registry);
    assert_eq!(seeded.len(), 2);
    let a = seeded.iter().find(|e| e.path == access).unwrap();
    let prefix = &std::fs::read(&access).unwrap()[..1024];
    let meta = std::fs::metadata(&access).unwrap();
    let fp = Fingerprint::of(prefix);
    assert_eq!(a.identity, identity_of(fp, Inode::of(&meta)));
    assert_eq!((a.fp_len, a.fp_hash.clone()), (1024, fp.to_hex()));
    assert_eq!((a.offset, a.size, a.ino), (1000, 2000, meta.ino()));
    // Its lines get the ids Filebeat's messages of them get.
    let ids = a.filebeat_ids.as_ref().unwrap();
    assert_eq!(
        (ids.host.as_str(), ids.path.as_str()),
        ("web1", &*access.to_string_lossy())
    );
    let e = seeded.iter().find(|e| e.path == error).unwrap();
    assert_eq!(e.fp_len, 50, "a short file keeps its short fingerprint");
    assert!(e.identity.ends_with(&format!("-i{}", e.ino)));
    // Written as the file input loads it; not over an existing one.
    seed::check_writable(&plan, false).unwrap();
    seed::write(&plan).unwrap();
    let err = seed::check_writable(&plan, false).unwrap_err().to_string();
    assert!(
        err.contains("t.json: error: a logpipe checkpoint registry exists"),
        "{err}"
    );
    seed::check_writable(&plan, true).unwrap();
    match crate::input::file::registry::Registry::new(path.clone())
        .load()
        .unwrap()
    {
        crate::input::file::registry::Stored::Ok(loaded) => assert_eq!(&loaded, seeded),
        other => panic!("{other:?}"),
    }
}
