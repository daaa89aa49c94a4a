//! The playground in a real browser: headless Chromium opens the page with `?autopilot=...`
//! (the page trains XOR to epoch 200 through the server, then records the tape tab's default
//! expression and steps backward to the end), and the test reads the resulting DOM and takes
//! screenshots. Skipped, saying why, only where Chromium is not installed; `.ci/run` installs
//! Debian's `chromium`.
//!
//! Set `TAPEGRAD_SCREENSHOT_DIR` to also write the screenshots there; the README's pictures are
//! made from the workspace root with
//! `TAPEGRAD_SCREENSHOT_DIR=$PWD/docs cargo test -p tapegrad-playground --test browser`
//! (a relative path is taken from `crates/playground`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapegrad_autodiff::Tape;
use tapegrad_playground::{Server, ServerLimits};
use tapegrad_tensor::Tensor;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TAPEGRAD_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Runs headless Chromium on `url` with `extra` arguments, returning its standard output;
/// kills it after two minutes.
fn run_chromium(exe: &Path, profile: &Path, url: &str, extra: &[String]) -> String {
    let mut cmd = Command::new(exe);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,900",
        "--virtual-time-budget=60000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("starting chromium");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let start = Instant::now();
    loop {
        if child.try_wait().expect("waiting for chromium").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish {url} within two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().expect("reader").expect("chromium's output")
}

/// The value of attribute `name` in `tag` (a serialized start tag), unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The start tag of the first element whose start tag contains `needle`.
fn tag_with<'a>(dom: &'a str, needle: &str) -> Option<&'a str> {
    let at = dom.find(needle)?;
    let open = dom[..at].rfind('<')?;
    let close = at + dom[at..].find('>')?;
    Some(&dom[open..=close])
}

fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|c| {
            let inner = &c[c.find('>').map_or(0, |i| i + 1)..];
            inner[..inner.find("</td>").unwrap_or(inner.len())].to_string()
        })
        .collect()
}

#[test]
fn the_page_trains_and_steps_backward_in_chromium() {
    let Some(exe) = chromium() else {
        println!(
            "skipped: Chromium is not installed here (apt-get install chromium, or set TAPEGRAD_CHROMIUM)"
        );
        return;
    };
    let server = Server::start("127.0.0.1", 0, ServerLimits::default()).expect("a port");
    let base = format!("http://{}/", server.addr());
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playground-browser");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("a temporary directory");

    // The whole autopilot, then the DOM.
    let dom = run_chromium(
        &exe,
        &tmp.join("profile-dom"),
        &format!("{base}?autopilot=all"),
        &["--dump-dom".to_string()],
    );
    let body = tag_with(&dom, "<body").expect("a body");
    assert_eq!(
        attr(body, "data-network").as_deref(),
        Some("done"),
        "{body}"
    );
    assert_eq!(attr(body, "data-tape").as_deref(), Some("done"), "{body}");
    assert_eq!(attr(body, "data-autopilot").as_deref(), Some("done"));

    // The boundary was drawn from a snapshot, and the five neurons (4 hidden, 1 output) each
    // have a picture.
    let boundary = tag_with(&dom, "id=\"boundary\"").expect("the boundary canvas");
    assert!(attr(boundary, "data-drawn").is_some_and(|v| v.parse::<u64>().unwrap() > 1));
    let grid = tag_with(&dom, "id=\"neuron-grid\"").expect("the neuron grid");
    assert_eq!(attr(grid, "data-neurons").as_deref(), Some("5"));
    assert_eq!(
        dom.matches("class=\"neuron\"").count() + dom.matches("class=\"neuron selected\"").count(),
        5
    );
    let epoch_text = dom.split("id=\"epoch\">").nth(1).expect("the epoch");
    let epoch: u64 = epoch_text
        .trim_start_matches("epoch ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(epoch >= 200, "{epoch_text}");
    let test_acc: f64 = dom
        .split("id=\"test-acc\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.parse().ok())
        .expect("the test accuracy");
    assert!(test_acc >= 0.95, "XOR with a hidden layer: {test_acc}");

    // The trace table after every backward step: each leaf's gradient cell holds what the
    // steps summed to, and that is what tape.backward gives for the same expression here.
    let tape = Tape::<f64>::new();
    let a = tape.var(Tensor::scalar(2.0));
    let b = tape.var(Tensor::scalar(-3.0));
    let y = (a * b + a).tanh();
    let grads = tape.backward(y).unwrap();
    let expected = [
        ("a", grads[a].item().unwrap()),
        ("b", grads[b].item().unwrap()),
    ];
    let rows: Vec<&str> = dom.split("<tr data-id=").skip(1).collect();
    assert_eq!(rows.len(), tape.len(), "one row per node");
    for (label, want) in expected {
        let row = rows
            .iter()
            .find(|r| {
                let c = cells(r);
                c.get(1).map(String::as_str) == Some("leaf")
                    && c.get(3).map(String::as_str) == Some(label)
            })
            .unwrap_or_else(|| panic!("a row for leaf {label}"));
        let grad_td = tag_with(row, "class=\"grad filled\"").expect("a filled gradient cell");
        let shown: Vec<f64> = serde_json::from_str(&attr(grad_td, "data-grad").unwrap()).unwrap();
        let backward: Vec<f64> =
            serde_json::from_str(&attr(grad_td, "data-backward").unwrap()).unwrap();
        assert_eq!(shown, vec![want], "leaf {label}: the steps' sum");
        assert_eq!(backward, vec![want], "leaf {label}: the server's backward");
    }
    let info = tag_with(&dom, "id=\"step-info\"").unwrap();
    assert_eq!(attr(info, "data-complete").as_deref(), Some("same"));
    assert!(dom.contains("3 of 3 backward steps"));
    // The graph is drawn: one box per node; and given as the tape's own DOT text.
    assert_eq!(dom.matches("<g class=\"node").count(), tape.len());
    let dot = dom.split("id=\"dot\"").nth(1).expect("the DOT box");
    assert!(
        dot.contains("digraph tape") && dot.contains("n2 -&gt; n3"),
        "{}",
        &dot[..200.min(dot.len())]
    );

    // Screenshots: the network tab after training, the tape tab mid-backward.
    let dir = std::env::var_os("TAPEGRAD_SCREENSHOT_DIR").map(PathBuf::from);
    for (pilot, file) in [
        ("network", "playground.png"),
        ("tape", "playground-tape.png"),
    ] {
        let shot = tmp.join(file);
        run_chromium(
            &exe,
            &tmp.join(format!("profile-{pilot}")),
            &format!("{base}?autopilot={pilot}"),
            &[format!("--screenshot={}", shot.display())],
        );
        let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
            "{} bytes",
            png.len()
        );
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::copy(&shot, dir.join(file)).unwrap();
        }
        println!("screenshot: {}", shot.display());
    }
    server.stop();
}
