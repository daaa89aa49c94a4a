//! The binary: the address it prints, loopback by default, and its argument errors; and the
//! page it serves fetching nothing from elsewhere.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_tapegrad-playground");

#[test]
fn it_listens_on_loopback_and_prints_the_address() {
    let mut child = Command::new(EXE)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
}

#[test]
fn bad_arguments_are_named() {
    for (args, needle) in [
        (&["--port", "http"][..], "`http` is not a port number"),
        (&["--port"][..], "--port needs a value"),
        (&["--colour"][..], "unknown argument `--colour`"),
        (&["--host", "256.1.1.1", "--port", "0"][..], "256.1.1.1"),
    ] {
        let out = Command::new(EXE).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let help = Command::new(EXE).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--host HOST"));
}

#[test]
fn the_page_fetches_nothing_from_elsewhere() {
    // Every file the page loads is served by the binary: no address outside it appears in them.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/assets");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        files += 1;
        for (i, line) in text.lines().enumerate() {
            let external =
                line.contains("http://") || line.contains("https://") || line.contains("//cdn");
            // The SVG namespace is an identifier, not a fetch.
            let namespace = line.contains("xmlns=\"http://www.w3.org/2000/svg\"");
            assert!(
                !external || namespace,
                "{}:{}: {line}",
                path.display(),
                i + 1
            );
        }
    }
    assert_eq!(files, 3);
}
