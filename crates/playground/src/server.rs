//! The HTTP server: the page, a JSON API over training sessions and the tape, and a stream
//! of server-sent events per session.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, StatusCode};

use crate::expr::{self, ExprLimits};
use crate::session::{Config, Limits, Session};

/// Everything the server bounds, so that no request can take it down.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Sessions (browser tabs) at once.
    pub max_sessions: usize,
    /// Event streams open at once.
    pub max_streams: usize,
    /// Bytes in a request body.
    pub max_body: usize,
    /// A session unused this long may be closed to make room for a new one.
    pub idle: Duration,
    /// A running session that no page has watched (no request, no open event stream) for this
    /// long pauses: a closed tab does not keep a core busy.
    pub pause_unwatched: Duration,
    /// Threads answering requests (streams have their own).
    pub workers: usize,
    /// Events per second a stream sends at most.
    pub events_per_second: u32,
    /// What a session may ask for.
    pub session: Limits,
    /// What a tape request may ask for.
    pub expr: ExprLimits,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_sessions: 16,
            max_streams: 32,
            max_body: 64 * 1024,
            idle: Duration::from_secs(120),
            pause_unwatched: Duration::from_secs(30),
            workers: 8,
            events_per_second: 10,
            session: Limits::default(),
            expr: ExprLimits::default(),
        }
    }
}

/// A session and what the server keeps beside it.
struct Entry {
    session: Session,
    running: bool,
    /// Bumped on every change the page should see.
    version: u64,
    /// Bumped when the points change (a new dataset or seed).
    data_version: u64,
    /// Why training stopped, if it failed.
    error: Option<String>,
    last_used: Instant,
    /// Whether a trainer thread is looping for this session.
    trainer: bool,
    /// Set when the session is closed: its trainer and streams end.
    closed: bool,
}

struct Cell {
    entry: Mutex<Entry>,
    changed: Condvar,
}

impl Cell {
    fn lock(&self) -> MutexGuard<'_, Entry> {
        // A panic while holding the lock leaves the entry as it was at the last completed
        // change; keep serving it.
        self.entry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Shared {
    limits: ServerLimits,
    sessions: Mutex<HashMap<String, Arc<Cell>>>,
    streams: AtomicUsize,
    stopping: AtomicBool,
}

impl Shared {
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<Cell>>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running playground server.
pub struct Server {
    addr: SocketAddr,
    http: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// An error answer: status and body (`{"error": message}`, and more fields for some).
struct ApiError(u16, Value);

impl ApiError {
    fn new(status: u16, msg: impl Into<String>) -> Self {
        ApiError(status, json!({ "error": msg.into() }))
    }
}

type ApiResult = Result<(u16, Value), ApiError>;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(400, msg)
}

impl Server {
    /// Starts serving on `host:port` (port 0 picks a free one) with `limits`.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound (in use, or not an address of this machine).
    pub fn start(host: &str, port: u16, limits: ServerLimits) -> std::io::Result<Server> {
        let http = tiny_http::Server::http((host, port))
            .map_err(|e| std::io::Error::other(format!("binding {host}:{port}: {e}")))?;
        let addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("not an IP address"))?;
        let http = Arc::new(http);
        let shared = Arc::new(Shared {
            limits,
            sessions: Mutex::new(HashMap::new()),
            streams: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        });
        let workers = (0..limits.workers.max(1))
            .map(|i| {
                let (http, shared) = (Arc::clone(&http), Arc::clone(&shared));
                std::thread::Builder::new()
                    .name(format!("playground-http-{i}"))
                    .spawn(move || {
                        while !shared.stopping.load(Ordering::Acquire) {
                            match http.recv() {
                                Ok(request) => handle(&shared, request),
                                Err(_) => break,
                            }
                        }
                    })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Server {
            addr,
            http,
            shared,
            workers,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the process ends.
    pub fn wait(self) {
        for w in self.workers {
            let _ = w.join();
        }
    }

    /// Stops serving: closes every session (their trainers and streams end) and joins the
    /// request threads.
    pub fn stop(self) {
        self.shared.stopping.store(true, Ordering::Release);
        for cell in self.shared.sessions().drain().map(|(_, c)| c) {
            close(&cell);
        }
        for _ in 0..self.workers.len() {
            self.http.unblock();
        }
        for w in self.workers {
            let _ = w.join();
        }
    }
}

fn close(cell: &Cell) {
    let mut e = cell.lock();
    e.closed = true;
    e.running = false;
    e.version += 1;
    cell.changed.notify_all();
}

fn json_response(status: u16, body: &Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(body.to_string().into_bytes())
        .with_status_code(StatusCode(status))
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Cache-Control", "no-store"))
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

fn handle(shared: &Arc<Shared>, mut request: Request) {
    let url = request.url().to_string();
    let path = url.split('?').next().unwrap_or("").to_string();
    let method = request.method().clone();
    // Static files.
    if method == Method::Get
        && let Some((body, kind)) = crate::assets::file(&path)
    {
        let response = Response::from_data(body.as_bytes().to_vec())
            .with_header(header("Content-Type", kind))
            .with_header(header("Cache-Control", "no-cache"));
        let _ = request.respond(response);
        return;
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // The event stream takes over the connection on a thread of its own.
    if method == Method::Get
        && let ["api", "sessions", id, "events"] = parts[..]
    {
        stream(shared, request, id);
        return;
    }
    let body = match read_body(&mut request, shared.limits.max_body) {
        Ok(b) => b,
        Err(e) => {
            let _ = request.respond(json_response(e.0, &e.1));
            return;
        }
    };
    // A panic in a handler is a bug; it answers 500 and the server goes on.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        route(shared, &method, &parts, &body)
    }))
    .unwrap_or_else(|_| Err(ApiError::new(500, "internal error")));
    let (status, value) = match result {
        Ok(ok) => ok,
        Err(ApiError(status, body)) => (status, body),
    };
    let _ = request.respond(json_response(status, &value));
}

fn read_body(request: &mut Request, max: usize) -> Result<Vec<u8>, ApiError> {
    if request.body_length().is_some_and(|n| n > max) {
        return Err(ApiError::new(
            413,
            format!("the body is larger than {max} bytes"),
        ));
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| bad(format!("reading the body: {e}")))?;
    if body.len() > max {
        return Err(ApiError::new(
            413,
            format!("the body is larger than {max} bytes"),
        ));
    }
    Ok(body)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|e| bad(format!("the body is not valid JSON for this request: {e}")))
}

fn route(shared: &Arc<Shared>, method: &Method, parts: &[&str], body: &[u8]) -> ApiResult {
    match (method, parts) {
        (Method::Get, ["api", "limits"]) => {
            let l = &shared.limits;
            Ok((
                200,
                json!({
                    "max_points": l.session.max_points,
                    "max_layers": l.session.max_layers,
                    "max_width": l.session.max_width,
                    "max_speed": l.session.max_speed,
                    "max_expression": l.expr.max_expression,
                    "functions": expr::FUNCTIONS.iter().map(|(n, a, d)| json!({"name": n, "args": a, "what": d})).collect::<Vec<_>>(),
                    "defaults": Config::default(),
                }),
            ))
        }
        (Method::Post, ["api", "sessions"]) => create(shared, parse(body)?),
        (Method::Post, ["api", "tape"]) => tape(shared, body),
        (_, ["api", "sessions", id, rest @ ..]) => {
            let cell = shared.sessions().get(*id).cloned().ok_or_else(|| {
                ApiError::new(
                    404,
                    format!("no session `{id}` (closed, or the server restarted)"),
                )
            })?;
            session_route(shared, &cell, id, method, rest, body)
        }
        (_, ["api", ..]) => Err(ApiError::new(
            404,
            format!("no API at /{}", parts.join("/")),
        )),
        _ => Err(ApiError::new(
            404,
            format!("nothing at /{}", parts.join("/")),
        )),
    }
}

fn create(shared: &Arc<Shared>, config: Config) -> ApiResult {
    let session = Session::new(config, &shared.limits.session).map_err(|e| bad(e.0))?;
    let mut sessions = shared.sessions();
    if sessions.len() >= shared.limits.max_sessions {
        // Make room by closing the session unused longest, if it has been idle long enough.
        let oldest = sessions
            .iter()
            .map(|(id, c)| (id.clone(), c.lock().last_used))
            .min_by_key(|(_, t)| *t);
        match oldest {
            Some((id, t)) if t.elapsed() >= shared.limits.idle => {
                if let Some(c) = sessions.remove(&id) {
                    close(&c);
                }
            }
            _ => {
                return Err(ApiError::new(
                    503,
                    format!(
                        "{} sessions are open, the most at once; close a tab and try again",
                        shared.limits.max_sessions
                    ),
                ));
            }
        }
    }
    let id = loop {
        let id = format!("{:016x}", rand::random::<u64>());
        if !sessions.contains_key(&id) {
            break id;
        }
    };
    let cell = Arc::new(Cell {
        entry: Mutex::new(Entry {
            session,
            running: false,
            version: 1,
            data_version: 1,
            error: None,
            last_used: Instant::now(),
            trainer: false,
            closed: false,
        }),
        changed: Condvar::new(),
    });
    sessions.insert(id.clone(), Arc::clone(&cell));
    drop(sessions);
    let state = state_json(&id, &cell.lock(), true)?;
    Ok((201, state))
}

fn state_json(id: &str, e: &Entry, points: bool) -> Result<Value, ApiError> {
    let mut v = e
        .session
        .snapshot()
        .map_err(|err| ApiError::new(500, err.to_string()))?;
    v["id"] = json!(id);
    v["running"] = json!(e.running);
    v["version"] = json!(e.version);
    v["data_version"] = json!(e.data_version);
    v["error"] = json!(e.error);
    if points {
        v["points"] = e.session.points();
    }
    Ok(v)
}

fn session_route(
    shared: &Arc<Shared>,
    cell: &Arc<Cell>,
    id: &str,
    method: &Method,
    rest: &[&str],
    body: &[u8],
) -> ApiResult {
    let limits = &shared.limits;
    match (method, rest) {
        (Method::Get, []) => {
            let mut e = cell.lock();
            e.last_used = Instant::now();
            Ok((200, state_json(id, &e, true)?))
        }
        (Method::Delete, []) => {
            if let Some(c) = shared.sessions().remove(id) {
                close(&c);
            }
            Ok((200, json!({ "closed": id })))
        }
        (Method::Put, ["config"]) => {
            let config: Config = parse(body)?;
            let mut e = cell.lock();
            let restarted = e
                .session
                .apply(config, &limits.session)
                .map_err(|e| bad(e.0))?;
            if restarted {
                e.running = false;
                e.error = None;
                e.data_version += 1;
            }
            e.version += 1;
            e.last_used = Instant::now();
            cell.changed.notify_all();
            Ok((200, state_json(id, &e, true)?))
        }
        (Method::Post, [action @ ("start" | "pause" | "step" | "reset")]) => {
            let mut e = cell.lock();
            e.last_used = Instant::now();
            match *action {
                "start" => {
                    e.running = true;
                    e.error = None;
                    if !e.trainer {
                        e.trainer = true;
                        let (cell2, shared2) = (Arc::clone(cell), Arc::clone(shared));
                        let spawned = std::thread::Builder::new()
                            .name("playground-trainer".into())
                            .spawn(move || trainer(&shared2, &cell2));
                        if spawned.is_err() {
                            e.trainer = false;
                            e.running = false;
                            return Err(ApiError::new(503, "no thread for training is available"));
                        }
                    }
                }
                "pause" => e.running = false,
                "step" => {
                    e.running = false;
                    if let Err(err) = e.session.step_epoch() {
                        e.error = Some(err.to_string());
                    }
                }
                _ => {
                    let config = e.session.config().clone();
                    e.session = Session::new(config, &limits.session).map_err(|err| bad(err.0))?;
                    e.running = false;
                    e.error = None;
                }
            }
            e.version += 1;
            cell.changed.notify_all();
            Ok((
                200,
                json!({ "running": e.running, "epoch": e.session.epoch(), "error": e.error, "version": e.version }),
            ))
        }
        (_, []) | (_, ["config" | "start" | "pause" | "step" | "reset" | "events"]) => {
            Err(ApiError::new(405, format!("{method} is not allowed here")))
        }
        _ => Err(ApiError::new(
            404,
            format!("no API at /api/sessions/{id}/{}", rest.join("/")),
        )),
    }
}

/// Trains a running session epoch by epoch, at its speed, until it is paused or closed.
fn trainer(shared: &Shared, cell: &Cell) {
    loop {
        let started = Instant::now();
        let speed = {
            let mut e = cell.lock();
            if e.running && e.last_used.elapsed() >= shared.limits.pause_unwatched {
                e.running = false;
                e.error = Some("paused: no page was watching".into());
                e.version += 1;
                cell.changed.notify_all();
            }
            if !e.running || e.closed || shared.stopping.load(Ordering::Acquire) {
                e.trainer = false;
                return;
            }
            if let Err(err) = e.session.step_epoch() {
                e.error = Some(err.to_string());
                e.running = false;
            }
            e.version += 1;
            cell.changed.notify_all();
            e.session.config().speed.max(1)
        };
        let period = Duration::from_secs_f64(1.0 / f64::from(speed));
        if let Some(rest) = period.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

fn tape(shared: &Shared, body: &[u8]) -> ApiResult {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TapeRequest {
        expression: String,
        #[serde(default)]
        values: String,
    }
    let req: TapeRequest = parse(body)?;
    let rec = expr::record(&req.expression, &req.values, &shared.limits.expr).map_err(|e| {
        ApiError(
            422,
            json!({ "error": e.to_string(), "field": e.field, "column": e.column, "message": e.message }),
        )
    })?;
    let flat = |t: &tapegrad_tensor::Tensor<f64>| t.to_vec();
    let nodes: Vec<Value> = rec
        .rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "op": r.op,
                "inputs": r.inputs,
                "label": r.label,
                "shape": r.shape,
                "value": flat(&r.value),
                "requires_grad": r.requires_grad,
                "grad": rec.grads[r.id].as_ref().map(flat),
            })
        })
        .collect();
    // The running gradient of every node a step touched, after that step: the grad column as
    // backward fills it.
    let mut totals: HashMap<usize, tapegrad_tensor::Tensor<f64>> = HashMap::new();
    let mut steps = Vec::new();
    for s in &rec.steps {
        let mut after = Vec::new();
        for (j, c) in &s.contributions {
            let sum = match totals.remove(j) {
                Some(t) => {
                    if t.len() == 1 {
                        // As backward adds one-element gradients: a number plus a number.
                        tapegrad_tensor::Tensor::full(c.shape(), t.as_slice()[0] + c.as_slice()[0])
                    } else {
                        t.add(c).map_err(|e| ApiError::new(500, e.to_string()))?
                    }
                }
                None => c.clone(),
            };
            after.push(json!({ "node": j, "contribution": flat(c), "total": flat(&sum) }));
            totals.insert(*j, sum);
        }
        steps.push(json!({ "node": s.node, "upstream": flat(&s.upstream), "inputs": after }));
    }
    Ok((
        200,
        json!({ "nodes": nodes, "output": rec.output, "steps": steps, "dot": rec.dot }),
    ))
}

/// Serves `GET /api/sessions/{id}/events`: a server-sent event `state` whenever the session
/// changes (at most `events_per_second`), a comment every two seconds so a closed tab is
/// noticed, and a last event `closed` when the session closes. Runs on a thread of its own
/// until the tab goes away or the session closes.
fn stream(shared: &Arc<Shared>, request: Request, id: &str) {
    let Some(cell) = shared.sessions().get(id).cloned() else {
        let _ = request.respond(json_response(
            404,
            &json!({ "error": format!("no session `{id}`") }),
        ));
        return;
    };
    if shared.streams.fetch_add(1, Ordering::AcqRel) >= shared.limits.max_streams {
        shared.streams.fetch_sub(1, Ordering::AcqRel);
        let _ = request.respond(json_response(
            503,
            &json!({ "error": format!("{} event streams are open, the most at once", shared.limits.max_streams) }),
        ));
        return;
    }
    let (shared2, id) = (Arc::clone(shared), id.to_string());
    let spawned = std::thread::Builder::new()
        .name("playground-events".into())
        .spawn(move || {
            let mut out = request.into_writer();
            let _ = run_stream(&shared2, &cell, &id, &mut out);
            shared2.streams.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        shared.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

fn run_stream(shared: &Shared, cell: &Cell, id: &str, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
    )?;
    out.flush()?;
    let gap = Duration::from_secs_f64(1.0 / f64::from(shared.limits.events_per_second.max(1)));
    let (mut sent, mut sent_data) = (0u64, 0u64);
    let mut last_write = Instant::now();
    loop {
        let event = {
            let mut e = cell.lock();
            if e.version == sent && !e.closed {
                e = cell
                    .changed
                    .wait_timeout(e, Duration::from_secs(2))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            if e.closed || shared.stopping.load(Ordering::Acquire) {
                drop(e);
                // The connection stays open until the client closes it: tell the page why.
                out.write_all(b"event: closed\ndata: {}\n\n")?;
                return out.flush();
            }
            e.last_used = Instant::now();
            if e.version == sent {
                None
            } else {
                sent = e.version;
                let points = e.data_version != sent_data;
                sent_data = e.data_version;
                Some(
                    state_json(id, &e, points)
                        .map_err(|err| std::io::Error::other(err.1.to_string()))?,
                )
            }
        };
        match event {
            Some(v) => {
                out.write_all(b"event: state\ndata: ")?;
                out.write_all(v.to_string().as_bytes())?;
                out.write_all(b"\n\n")?;
            }
            None => out.write_all(b": still here\n\n")?,
        }
        out.flush()?;
        if let Some(rest) = gap.checked_sub(last_write.elapsed()) {
            std::thread::sleep(rest);
        }
        last_write = Instant::now();
    }
}
