//! Rotation storms: a writer appends numbered lines at full speed and
//! rotates its file every few thousand lines while logpipe follows it.
//! Every line must arrive, once, in order within its file.

mod common;
mod file_support;

use std::time::Duration;

use common::temp_dir;
use file_support::*;

const LINES: u64 = 40_000;
const EVERY: u64 = 3_000;

fn storm(rotation: Rotation, glob: &str, paced: bool) {
    let dir = temp_dir();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let writer = Writer {
        dir: logs.clone(),
        name: "access_log".into(),
        rotation,
        every: EVERY,
        padding: 60,
    };
    let pipeline = pipeline(dir.path(), &[&logs.join(glob)], "");
    // Start with one line so the first scan already finds the file.
    writer.write(0, 1);
    let run = Run::start(&pipeline, &dir.path().join("state"));
    run.wait_for(1, Duration::from_secs(30));
    if paced {
        // A file renamed to a name outside `paths` before logpipe noticed
        // it is never seen at all (README, "Rotation"), so here each new
        // file is discovered before the next rotation: writes go in bursts
        // that straddle a rotation, and the next burst waits for delivery.
        let mut from = 1;
        while from < LINES {
            let to = (from + EVERY).min(LINES);
            writer.write(from, to);
            run.wait_for(to as usize, Duration::from_secs(60));
            from = to;
        }
    } else {
        writer.write(1, LINES);
    }
    run.wait_for(LINES as usize, Duration::from_secs(90));
    let events = run.stop();
    assert_complete(&events, LINES, true);
}

#[test]
fn rename_and_create_rotation_loses_and_repeats_nothing_when_only_the_live_name_is_followed() {
    storm(Rotation::RenameCreate, "access_log", true);
}

#[test]
fn rename_and_create_rotation_loses_and_repeats_nothing_when_the_glob_matches_rotated_files() {
    storm(Rotation::RenameCreate, "access_log*", false);
}

#[test]
fn copytruncate_rotation_finishes_the_matched_copy_and_reads_the_truncated_file_anew() {
    storm(Rotation::CopyTruncate, "access_log*", false);
}

#[test]
fn rotatelogs_naming_is_followed_file_after_file() {
    storm(Rotation::NewFile, "access_log.*", false);
}
