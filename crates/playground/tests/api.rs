//! The playground's HTTP API from a client's side: a server on an ephemeral port, sessions
//! trained through it, the event stream, the tape, and requests meant to break it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tapegrad_playground::{Server, ServerLimits};

struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    fn new(server: &Server) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            base: format!("http://{}", server.addr()),
            agent,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut res = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            ("POST", b) => self
                .agent
                .post(&url)
                .content_type("application/json")
                .send(b.unwrap_or("")),
            ("PUT", b) => self
                .agent
                .put(&url)
                .content_type("application/json")
                .send(b.unwrap_or("")),
            _ => unreachable!(),
        }
        .expect("the server answers");
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().expect("a body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let (status, v) = self.call(method, path, body.as_deref());
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// Opens a session with `config` and returns its id.
    fn create(&self, config: Value) -> String {
        self.ok("POST", "/api/sessions", Some(config))["id"]
            .as_str()
            .expect("an id")
            .to_string()
    }

    /// Polls the session until `done` holds (or fails after 60 s).
    fn until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let s = self.ok("GET", &format!("/api/sessions/{id}"), None);
            if done(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "waiting for {what}: {s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Opens the session's event stream on a raw socket (the request sent, nothing read yet).
fn open_events(server: &Server, id: &str) -> TcpStream {
    open_events_at(&format!("http://{}", server.addr()), id)
}

fn start(limits: ServerLimits) -> Server {
    Server::start("127.0.0.1", 0, limits).expect("a free port on loopback")
}

#[test]
fn training_through_the_api_learns_xor_and_one_neuron_does_not() {
    let server = start(ServerLimits::default());
    let c = Client::new(&server);
    let s = c.ok("POST", "/api/sessions", Some(json!({ "speed": 1000 })));
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["epoch"], 0);
    assert_eq!(s["config"]["dataset"], "xor");
    let n_points = s["points"]["train"].as_array().unwrap().len()
        + s["points"]["test"].as_array().unwrap().len();
    assert_eq!(n_points, 300);
    let first_loss = s["last"]["train_loss"].as_f64().unwrap();
    c.ok("POST", &format!("/api/sessions/{id}/start"), None);
    let s = c.until(&id, "300 epochs", |s| s["epoch"].as_u64().unwrap() >= 300);
    let r = c.ok("POST", &format!("/api/sessions/{id}/pause"), None);
    assert_eq!(r["running"], false);
    let last = &s["last"];
    assert!(
        last["train_loss"].as_f64().unwrap() < first_loss / 3.0,
        "{last}"
    );
    assert!(last["test_accuracy"].as_f64().unwrap() >= 0.95, "{last}");
    // The loss curve has a point per epoch, falling.
    let history = s["history"].as_array().unwrap();
    assert!(history.len() >= 300);
    assert!(
        history.last().unwrap()["train_loss"].as_f64().unwrap()
            < history[0]["train_loss"].as_f64().unwrap()
    );
    // Every neuron has a picture of the grid: four hidden and the output.
    let layers = s["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["neurons"].as_array().unwrap().len(), 4);
    assert_eq!(
        layers[1]["neurons"][0]["weights"].as_array().unwrap().len(),
        4
    );
    // Paused means paused: the epoch stays.
    let e = c.ok("GET", &format!("/api/sessions/{id}"), None)["epoch"]
        .as_u64()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        c.ok("GET", &format!("/api/sessions/{id}"), None)["epoch"]
            .as_u64()
            .unwrap(),
        e
    );
    // Step trains exactly one epoch; reset starts over.
    let r = c.ok("POST", &format!("/api/sessions/{id}/step"), None);
    assert_eq!(r["epoch"].as_u64().unwrap(), e + 1);
    let r = c.ok("POST", &format!("/api/sessions/{id}/reset"), None);
    assert_eq!(r["epoch"], 0);
    // A new learning rate applies from the next epoch and keeps the network.
    c.ok("POST", &format!("/api/sessions/{id}/step"), None);
    let mut config = c.ok("GET", &format!("/api/sessions/{id}"), None)["config"].clone();
    config["learning_rate"] = json!(0.05);
    let s = c.ok("PUT", &format!("/api/sessions/{id}/config"), Some(config));
    assert_eq!(
        (s["epoch"].as_u64(), s["config"]["learning_rate"].as_f64()),
        (Some(1), Some(0.05))
    );

    // "One neuron": logistic regression cannot separate XOR.
    let s = c.ok(
        "PUT",
        &format!("/api/sessions/{id}/config"),
        Some(json!({ "hidden": [], "speed": 1000 })),
    );
    assert_eq!(s["layers"].as_array().unwrap().len(), 1);
    assert_eq!(s["parameters"], 3);
    c.ok("POST", &format!("/api/sessions/{id}/start"), None);
    let s = c.until(&id, "300 epochs of one neuron", |s| {
        s["epoch"].as_u64().unwrap() >= 300
    });
    assert!(
        s["last"]["test_accuracy"].as_f64().unwrap() < 0.8,
        "{}",
        s["last"]
    );
    server.stop();
}

#[test]
fn two_tabs_train_independently() {
    let server = start(ServerLimits::default());
    let c = Client::new(&server);
    let a = c.create(json!({ "speed": 500 }));
    let b = c.create(json!({ "dataset": "circles", "hidden": [6, 3], "speed": 500 }));
    assert_ne!(a, b);
    c.ok("POST", &format!("/api/sessions/{a}/start"), None);
    c.ok("POST", &format!("/api/sessions/{b}/start"), None);
    c.until(&a, "a trains", |s| s["epoch"].as_u64().unwrap() >= 20);
    c.until(&b, "b trains", |s| s["epoch"].as_u64().unwrap() >= 20);
    // Pausing a leaves b running.
    c.ok("POST", &format!("/api/sessions/{a}/pause"), None);
    let ea = c.ok("GET", &format!("/api/sessions/{a}"), None)["epoch"]
        .as_u64()
        .unwrap();
    let eb = c.ok("GET", &format!("/api/sessions/{b}"), None)["epoch"]
        .as_u64()
        .unwrap();
    c.until(&b, "b goes on", |s| s["epoch"].as_u64().unwrap() >= eb + 20);
    let sa = c.ok("GET", &format!("/api/sessions/{a}"), None);
    assert_eq!(sa["epoch"].as_u64().unwrap(), ea);
    assert_eq!(sa["config"]["dataset"], "xor");
    let sb = c.ok("GET", &format!("/api/sessions/{b}"), None);
    assert_eq!(sb["config"]["dataset"], "circles");
    assert_eq!(sb["layers"].as_array().unwrap().len(), 3);
    // Closing b ends it; a is untouched.
    c.ok("DELETE", &format!("/api/sessions/{b}"), None);
    assert_eq!(c.call("GET", &format!("/api/sessions/{b}"), None).0, 404);
    assert_eq!(
        c.ok("GET", &format!("/api/sessions/{a}"), None)["epoch"]
            .as_u64()
            .unwrap(),
        ea
    );
    server.stop();
}

#[test]
fn the_event_stream_sends_each_change() {
    let server = start(ServerLimits::default());
    let c = Client::new(&server);
    let id = c.create(json!({}));
    let tcp = open_events(&server, &id);
    let mut lines = BufReader::new(tcp).lines();
    let status = lines.next().unwrap().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut events = Vec::new();
    let mut stepped = false;
    while events.len() < 2 {
        let line = lines.next().expect("the stream stays open").unwrap();
        if line == "event: state" {
            let data = lines.next().unwrap().unwrap();
            let v: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            events.push(v);
            if !stepped {
                c.ok("POST", &format!("/api/sessions/{id}/step"), None);
                stepped = true;
            }
        }
    }
    // The first event carries the points; the next, after one epoch, does not repeat them.
    assert!(events[0]["points"]["train"].is_array());
    assert_eq!(events[0]["epoch"], 0);
    assert_eq!(events[1]["epoch"], 1);
    assert!(events[1].get("points").is_none());
    assert!(events[1]["version"].as_u64() > events[0]["version"].as_u64());
    // Closing the session ends its stream with a `closed` event.
    c.ok("DELETE", &format!("/api/sessions/{id}"), None);
    let mut rest = Vec::new();
    for line in lines.by_ref().map_while(Result::ok) {
        let end = line == "event: closed";
        rest.push(line);
        if end {
            break;
        }
    }
    assert_eq!(
        rest.last().map(String::as_str),
        Some("event: closed"),
        "{rest:?}"
    );
    assert_eq!(lines.next().unwrap().unwrap(), "data: {}");
    server.stop();
}

#[test]
fn the_tape_endpoint_steps_backward_to_the_gradients() {
    let server = start(ServerLimits::default());
    let c = Client::new(&server);
    let r = c.ok(
        "POST",
        "/api/tape",
        Some(json!({ "expression": "sigmoid(w1*x1 + w2*x2 + b)", "values": "w1 = 0.5, w2 = -1.5, b = 0.1\nx1 = 2, x2 = 1" })),
    );
    let nodes = r["nodes"].as_array().unwrap();
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(
        nodes[r["output"].as_u64().unwrap() as usize]["op"],
        "sigmoid"
    );
    // Running totals after the last step equal backward's gradient for every leaf.
    let mut last_total = std::collections::HashMap::new();
    for s in steps {
        for i in s["inputs"].as_array().unwrap() {
            last_total.insert(i["node"].as_u64().unwrap(), i["total"].clone());
        }
    }
    let y = 1.0 / (1.0 + (-(0.5f64 * 2.0 - 1.5 + 0.1)).exp());
    for n in nodes.iter().filter(|n| n["op"] == "leaf") {
        let id = n["id"].as_u64().unwrap();
        assert_eq!(last_total[&id], n["grad"], "leaf {}", n["label"]);
        let x = match n["label"].as_str().unwrap() {
            "w1" => 2.0,
            "w2" => 1.0,
            "b" => 1.0,
            "x1" => 0.5,
            _ => -1.5,
        };
        let g = n["grad"][0].as_f64().unwrap();
        assert!((g - y * (1.0 - y) * x).abs() < 1e-15, "{} {g}", n["label"]);
    }
    // A parse error points at its column.
    let (status, e) = c.call(
        "POST",
        "/api/tape",
        Some(r#"{"expression": "tanh(a * + b)", "values": "a = 1, b = 2"}"#),
    );
    assert_eq!(status, 422);
    assert_eq!(
        (e["field"].as_str(), e["column"].as_u64()),
        (Some("expression"), Some(10))
    );
    server.stop();
}

#[test]
fn malformed_and_oversized_requests_are_refused_and_the_server_goes_on() {
    let limits = ServerLimits {
        max_sessions: 2,
        idle: Duration::from_secs(3600),
        ..ServerLimits::default()
    };
    let server = start(limits);
    let c = Client::new(&server);
    let refused = |method: &str, path: &str, body: Option<&str>, status: u16, needle: &str| {
        let (s, v) = c.call(method, path, body);
        assert_eq!(s, status, "{method} {path} {body:?}: {v}");
        let msg = v["error"].as_str().unwrap_or_default().to_string();
        assert!(
            msg.contains(needle),
            "{method} {path}: `{msg}` should name `{needle}`"
        );
    };
    refused(
        "POST",
        "/api/sessions",
        Some("{not json"),
        400,
        "not valid JSON",
    );
    refused(
        "POST",
        "/api/sessions",
        Some(r#"{"colour": "red"}"#),
        400,
        "unknown field `colour`",
    );
    refused(
        "POST",
        "/api/sessions",
        Some(r#"{"points": 1000000}"#),
        400,
        "points",
    );
    refused(
        "POST",
        "/api/sessions",
        Some(r#"{"hidden": [4, 4, 4, 4, 4, 4, 4, 4]}"#),
        400,
        "hidden",
    );
    refused(
        "POST",
        "/api/sessions",
        Some(r#"{"hidden": [100000]}"#),
        400,
        "hidden",
    );
    refused(
        "POST",
        "/api/sessions",
        Some(r#"{"learning_rate": -1}"#),
        400,
        "learning_rate",
    );
    refused(
        "POST",
        "/api/sessions",
        Some(r#"{"points": "many"}"#),
        400,
        "invalid type",
    );
    let big = format!("{{\"expression\": \"{}\"}}", "a+".repeat(60_000));
    refused("POST", "/api/tape", Some(&big), 413, "larger than");
    let long = json!({ "expression": "a + ".repeat(150) + "a", "values": "a = 1" }).to_string();
    refused("POST", "/api/tape", Some(&long), 422, "longer than");
    let deep = json!({ "expression": format!("{}a{}", "(".repeat(60), ")".repeat(60)), "values": "a = 1" }).to_string();
    refused("POST", "/api/tape", Some(&deep), 422, "nested");
    refused("GET", "/api/nothing", None, 404, "no API");
    refused("GET", "/api/sessions/0123/events", None, 404, "no session");
    refused("POST", "/api/sessions/0123/start", None, 404, "no session");
    let id = c.create(json!({}));
    refused(
        "GET",
        &format!("/api/sessions/{id}/start"),
        None,
        405,
        "not allowed",
    );
    refused(
        "POST",
        &format!("/api/sessions/{id}/fly"),
        None,
        404,
        "no API",
    );
    refused(
        "PUT",
        &format!("/api/sessions/{id}/config"),
        Some(r#"{"dataset": "mnist"}"#),
        400,
        "dataset",
    );
    // The refused config changed nothing.
    assert_eq!(
        c.ok("GET", &format!("/api/sessions/{id}"), None)["config"]["dataset"],
        "xor"
    );
    // Sessions are bounded.
    c.ok("POST", "/api/sessions", None);
    refused("POST", "/api/sessions", None, 503, "sessions are open");
    // Garbage on the socket, a request cut off mid-body, a client that goes away mid-stream.
    for raw in [
        &b"\x00\x01\x02 garbage\r\n\r\n"[..],
        b"POST /api/tape HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"expr",
        b"GET /api/sessions/",
    ] {
        let mut tcp = TcpStream::connect(server.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        tcp.write_all(raw).unwrap();
        drop(tcp);
    }
    let mut tcp = open_events(&server, &id);
    let mut first = [0u8; 64];
    let _ = tcp.read(&mut first).unwrap();
    drop(tcp);
    // And the server still answers.
    let s = c.ok("GET", &format!("/api/sessions/{id}"), None);
    assert_eq!(s["id"], id.as_str());
    let page = c.call("GET", "/", None);
    assert_eq!(page.0, 200);
    assert!(page.1.as_str().unwrap().contains("tapegrad playground"));
    server.stop();
}

#[test]
fn the_default_limits_hold_at_their_edges() {
    let server = start(ServerLimits::default());
    let c = Client::new(&server);
    // 2,000 points and 6 hidden layers of 12 neurons are allowed; one more of each is not.
    let id = c.create(json!({ "points": 2000, "hidden": [12, 12, 12, 12, 12, 12] }));
    for (body, field) in [
        (json!({ "points": 2001 }), "points"),
        (json!({ "hidden": [12, 12, 12, 12, 12, 12, 12] }), "hidden"),
        (json!({ "hidden": [13] }), "hidden"),
    ] {
        let (status, v) = c.call("POST", "/api/sessions", Some(&body.to_string()));
        assert_eq!(status, 400, "{body}");
        assert!(v["error"].as_str().unwrap().starts_with(field), "{v}");
    }
    // 16 sessions at once (one is open already), then no more while all are in use.
    for _ in 1..16 {
        c.ok("POST", "/api/sessions", None);
    }
    let (status, v) = c.call("POST", "/api/sessions", None);
    assert_eq!(status, 503, "{v}");
    // 32 event streams at once, then a refusal.
    let mut streams = Vec::new();
    for _ in 0..32 {
        let tcp = open_events(&server, &id);
        let mut status = String::new();
        BufReader::new(tcp.try_clone().unwrap())
            .read_line(&mut status)
            .unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        streams.push(tcp);
    }
    let (status, v) = c.call("GET", &format!("/api/sessions/{id}/events"), None);
    assert_eq!(status, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("event streams"));
    drop(streams);
    // Expressions: 400 characters and 400 nodes.
    let ok = "a + ".repeat(99) + "a";
    assert!(ok.len() <= 400);
    c.ok(
        "POST",
        "/api/tape",
        Some(json!({ "expression": ok, "values": "a = 1" })),
    );
    // The most nodes 400 characters make (a constant, a negation and an addition per three
    // characters) is exactly the 400 allowed.
    let dense = "-1+".repeat(133) + "1";
    assert_eq!(dense.len(), 400);
    let r = c.ok("POST", "/api/tape", Some(json!({ "expression": dense })));
    assert_eq!(r["nodes"].as_array().unwrap().len(), 400);
    let (status, v) = c.call(
        "POST",
        "/api/tape",
        Some(&json!({ "expression": dense + "+1" }).to_string()),
    );
    assert_eq!(status, 422);
    assert!(
        v["message"].as_str().unwrap().contains("longer than 400"),
        "{v}"
    );
    server.stop();
}

#[test]
fn events_come_at_most_ten_a_second() {
    let server = start(ServerLimits::default());
    let c = Client::new(&server);
    let id = c.create(json!({ "speed": 1000 }));
    c.ok("POST", &format!("/api/sessions/{id}/start"), None);
    let tcp = open_events(&server, &id);
    let mut lines = BufReader::new(tcp).lines();
    let start = Instant::now();
    let mut events = 0;
    let mut epochs = Vec::new();
    while start.elapsed() < Duration::from_secs(2) {
        let line = lines.next().unwrap().unwrap();
        if let Some(data) = line.strip_prefix("data: {\"") {
            events += 1;
            let v: Value = serde_json::from_str(&format!("{{\"{data}")).unwrap();
            epochs.push(v["epoch"].as_u64().unwrap());
        }
    }
    // Training runs at up to 1,000 epochs a second; the stream sends a snapshot of the latest
    // at most every 100 ms (one more for the first event and the window's edges).
    assert!(events <= 22, "{events} events in two seconds");
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    server.stop();
}

#[test]
fn a_session_nobody_watches_pauses() {
    let limits = ServerLimits {
        pause_unwatched: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let server = start(limits);
    let c = Client::new(&server);
    let watched = c.create(json!({ "speed": 200 }));
    let alone = c.create(json!({ "speed": 200 }));
    let events = open_events(&server, &watched);
    c.ok("POST", &format!("/api/sessions/{watched}/start"), None);
    c.ok("POST", &format!("/api/sessions/{alone}/start"), None);
    std::thread::sleep(Duration::from_millis(800));
    // Asking about a session is watching it, so look at the unwatched one only once.
    let s = c.ok("GET", &format!("/api/sessions/{alone}"), None);
    assert_eq!(s["running"], false, "{}", s["error"]);
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("no page was watching")
    );
    let e = s["epoch"].as_u64().unwrap();
    assert!(e > 0 && e < 160, "trained {e} epochs before pausing");
    // The one with an open event stream trains on.
    let w = c.ok("GET", &format!("/api/sessions/{watched}"), None);
    assert_eq!(w["running"], true);
    assert!(w["epoch"].as_u64().unwrap() > e);
    drop(events);
    server.stop();
}

#[test]
fn many_clients_at_once_neither_deadlock_nor_mix_sessions() {
    let server = start(ServerLimits::default());
    let base = format!("http://{}", server.addr());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for t in 0..8u64 {
        let (base, done) = (base.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let c = Client {
                base,
                agent: ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .into(),
            };
            let points = 100 + 10 * t as usize;
            let id = c.create(json!({ "points": points, "speed": 500, "seed": t }));
            let events = open_events_at(&c.base, &id);
            for round in 0..12 {
                let path = format!("/api/sessions/{id}");
                match round % 6 {
                    0 => drop(c.ok("POST", &format!("{path}/start"), None)),
                    1 => drop(c.ok("POST", &format!("{path}/step"), None)),
                    2 => {
                        let mut config = c.ok("GET", &path, None)["config"].clone();
                        config["learning_rate"] = json!(0.1 + t as f64 / 100.0);
                        drop(c.ok("PUT", &format!("{path}/config"), Some(config)));
                    }
                    3 => drop(c.ok(
                        "POST",
                        "/api/tape",
                        Some(json!({ "expression": "sigmoid(w * x + b)", "values": format!("w = {t}, x = 2, b = 1") })),
                    )),
                    4 => drop(c.ok("POST", &format!("{path}/pause"), None)),
                    _ => drop(c.ok("POST", &format!("{path}/reset"), None)),
                }
            }
            // Each client sees its own session, with its own settings.
            let s = c.ok("GET", &format!("/api/sessions/{id}"), None);
            let own = s["config"]["points"].as_u64() == Some(points as u64)
                && s["config"]["seed"].as_u64() == Some(t)
                && s["config"]["learning_rate"].as_f64() == Some(0.1 + t as f64 / 100.0);
            drop(events);
            if !own {
                eprintln!("client {t}: {}", s["config"]);
            }
            let _ = done.send(own);
        });
    }
    drop(done_tx);
    for _ in 0..8 {
        let own = done_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("every client finishes: no deadlock");
        assert!(own, "a client saw another's settings");
    }
    server.stop();
}

/// [`open_events`] by address, for clients on other threads.
fn open_events_at(base: &str, id: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        tcp,
        "GET /api/sessions/{id}/events HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    tcp
}
