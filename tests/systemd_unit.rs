//! The shipped systemd unit passes `systemd-analyze verify`.

mod common;

use std::path::Path;
use std::process::Command;

fn verify(unit: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

#[test]
fn the_unit_verifies_with_the_binary_where_exec_start_expects_it() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing (install systemd)"
        );
        eprintln!("skipped: no systemd-analyze");
        return;
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/logpipe.service");
    let unit = std::fs::read_to_string(&shipped).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/logpipe run"));
    assert!(unit.contains("Type=notify"));
    // Defence in depth with CAP_DAC_READ_SEARCH: the service sees its log
    // directories, not the rest of /var, nor keys and password databases;
    // and enough descriptors for many files and connections.
    assert!(unit.contains("TemporaryFileSystem=/var:ro"));
    assert!(unit.contains("BindReadOnlyPaths=-/var/log/httpd -/var/log/apache2"));
    let hidden = unit
        .lines()
        .find(|l| l.starts_with("InaccessiblePaths="))
        .expect("InaccessiblePaths");
    for path in ["/etc/shadow", "/etc/ssl/private", "/etc/pki/tls/private"] {
        assert!(hidden.contains(&format!("-{path} ")), "{path} not hidden");
    }
    assert!(unit.contains("LimitNOFILE=65536"));

    // The unit as shipped, pointed at the binary just built.
    let dir = common::temp_dir();
    let copy = dir.path().join("logpipe.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/logpipe", env!("CARGO_BIN_EXE_logpipe")),
    )
    .unwrap();
    let (ok, text) = verify(&copy);
    assert!(ok, "systemd-analyze verify: {text}");

    // Under CI (root, a throwaway machine), literally: installed where
    // ExecStart expects it.
    if std::env::var_os("CI").is_some() {
        std::fs::create_dir_all("/usr/local/bin").unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_logpipe"), "/usr/local/bin/logpipe").unwrap();
        let (ok, text) = verify(&shipped);
        assert!(ok, "systemd-analyze verify: {text}");
    }
}
