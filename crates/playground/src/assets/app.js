// tapegrad playground. Every number drawn here comes from the server, where tapegrad trains
// the network and records the tape; this file only draws.
"use strict";

const $ = (s) => document.querySelector(s);
const C0 = [245, 147, 34];
const C1 = [8, 119, 189];
const params = new URLSearchParams(location.search);
const autopilot = params.get("autopilot"); // "network", "tape" or "all": tests and screenshots

let session = null; // id
let stream = null; // EventSource
let state = null; // the last snapshot
let points = null; // {train, test}
let config = null;
let selected = null; // {layer, index}
let sendTimer = null;

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const j = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) {
    const e = new Error(j.error || r.statusText);
    e.body = j;
    e.status = r.status;
    throw e;
  }
  return j;
}

// ---------------------------------------------------------------- tabs

function showTab(name) {
  document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".panel").forEach((p) => p.classList.toggle("active", p.id === name));
}
document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));

// ---------------------------------------------------------------- network tab: settings

const FIELDS = ["dataset", "noise", "points", "test_fraction", "activation", "learning_rate", "batch_size", "optimizer", "l2", "speed", "seed"];
const NUMERIC = new Set(["noise", "points", "test_fraction", "learning_rate", "batch_size", "l2", "speed", "seed"]);

function fillForm(c) {
  for (const f of FIELDS) $("#" + f).value = c[f];
  $("#noise-value").textContent = Number(c.noise).toFixed(2);
  drawLayerEditor(c.hidden);
}

function readForm() {
  const c = { ...config };
  for (const f of FIELDS) {
    const v = $("#" + f).value;
    c[f] = NUMERIC.has(f) ? Number(v) : v;
  }
  return c;
}

function drawLayerEditor(hidden) {
  const box = $("#layers-editor");
  box.innerHTML = "";
  if (hidden.length === 0) {
    box.innerHTML = '<div class="layer-row"><span>no hidden layer: logistic regression</span></div>';
  }
  hidden.forEach((w, i) => {
    const row = document.createElement("div");
    row.className = "layer-row";
    row.innerHTML = `<span>h${i + 1}: ${w} neuron${w === 1 ? "" : "s"}</span>`;
    const mk = (label, title, f) => {
      const b = document.createElement("button");
      b.textContent = label;
      b.title = title;
      b.addEventListener("click", f);
      row.appendChild(b);
    };
    mk("-", "one neuron fewer", () => changeHidden((h) => { h[i] = Math.max(1, h[i] - 1); }));
    mk("+", "one neuron more", () => changeHidden((h) => { h[i] = h[i] + 1; }));
    mk("x", "remove this layer", () => changeHidden((h) => { h.splice(i, 1); }));
    box.appendChild(row);
  });
}

function changeHidden(f) {
  const h = config.hidden.slice();
  f(h);
  config = { ...readForm(), hidden: h };
  sendConfig();
}

function sendConfig() {
  clearTimeout(sendTimer);
  sendTimer = setTimeout(async () => {
    const c = { ...readForm(), hidden: config.hidden };
    try {
      const s = await api("PUT", `/api/sessions/${session}/config`, c);
      $("#config-error").textContent = "";
      config = s.config;
      fillForm(config);
      accept(s);
    } catch (e) {
      $("#config-error").textContent = e.message;
    }
  }, 150);
}

for (const f of FIELDS) $("#" + f).addEventListener("change", sendConfig);
$("#noise").addEventListener("input", () => { $("#noise-value").textContent = Number($("#noise").value).toFixed(2); });
$("#add-layer").addEventListener("click", () => changeHidden((h) => { h.push(4); }));
$("#one-neuron").addEventListener("click", () => changeHidden((h) => { h.length = 0; }));

$("#start").addEventListener("click", async () => {
  const running = state && state.running;
  await action(running ? "pause" : "start");
});
$("#step").addEventListener("click", () => action("step"));
$("#reset").addEventListener("click", () => action("reset"));

async function action(name) {
  try {
    const r = await api("POST", `/api/sessions/${session}/${name}`);
    setRunning(r.running);
  } catch (e) {
    $("#train-error").textContent = e.message;
  }
}

function setRunning(running) {
  $("#start").textContent = running ? "Pause" : "Start";
}

// ---------------------------------------------------------------- network tab: the session

async function openSession() {
  const s = await api("POST", "/api/sessions", autopilot ? { speed: 300 } : {});
  session = s.id;
  config = s.config;
  fillForm(config);
  accept(s);
  listen();
}

function listen() {
  if (stream) stream.close();
  stream = new EventSource(`/api/sessions/${session}/events`);
  stream.addEventListener("state", (e) => accept(JSON.parse(e.data)));
  stream.addEventListener("closed", () => {
    // The server closed this session (or is stopping): start a new one.
    stream.close();
    stream = null;
    setTimeout(() => openSession().catch(() => {}), 1000);
  });
  stream.addEventListener("error", async () => {
    // The server restarted or closed the session: start a new one.
    if (stream.readyState === EventSource.CLOSED || !(await fetch(`/api/sessions/${session}`)).ok) {
      stream.close();
      openSession();
    }
  });
}

function accept(s) {
  if (s.points) points = s.points;
  state = s;
  setRunning(s.running);
  $("#train-error").textContent = s.error || "";
  render();
  if (autopilot) autopilotNetwork();
}

// ---------------------------------------------------------------- drawing

function colour(t) {
  // t in [0, 1]: class 0's orange through white to class 1's blue.
  const mix = (a, b, u) => Math.round(a + (b - a) * u);
  if (t < 0.5) {
    const u = t / 0.5;
    return [mix(C0[0], 248, u), mix(C0[1], 248, u), mix(C0[2], 248, u)];
  }
  const u = (t - 0.5) / 0.5;
  return [mix(248, C1[0], u), mix(248, C1[1], u), mix(248, C1[2], u)];
}

function decode(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// Draws a grid x grid picture (bytes 0..255) onto a canvas, smoothed.
function paint(canvas, bytes, grid) {
  const small = document.createElement("canvas");
  small.width = grid;
  small.height = grid;
  const sctx = small.getContext("2d");
  const img = sctx.createImageData(grid, grid);
  for (let i = 0; i < grid * grid; i++) {
    const [r, g, b] = colour(bytes[i] / 255);
    img.data.set([r, g, b, 255], 4 * i);
  }
  sctx.putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function toCanvas(canvas, x, y) {
  const [x0, x1] = state.domain.x;
  const [y0, y1] = state.domain.y;
  return [((x - x0) / (x1 - x0)) * canvas.width, ((y1 - y) / (y1 - y0)) * canvas.height];
}

function render() {
  if (!state) return;
  $("#epoch").textContent = `epoch ${state.epoch} · ${state.parameters} parameters`;
  const last = state.last;
  if (last) {
    $("#train-loss").textContent = last.train_loss.toFixed(4);
    $("#test-loss").textContent = last.test_loss.toFixed(4);
    $("#train-acc").textContent = last.train_accuracy.toFixed(3);
    $("#test-acc").textContent = last.test_accuracy.toFixed(3);
  }
  drawBoundary();
  drawNeurons();
  drawCurve();
  showNeuron();
}

function drawBoundary() {
  const canvas = $("#boundary");
  const out = state.layers[state.layers.length - 1].neurons[0];
  paint(canvas, decode(out.picture), state.grid);
  const ctx = canvas.getContext("2d");
  if (points) {
    for (const [set, ring] of [[points.train, false], [points.test, true]]) {
      for (const [x, y, label] of set) {
        const [px, py] = toCanvas(canvas, x, y);
        ctx.beginPath();
        ctx.arc(px, py, 3.2, 0, 2 * Math.PI);
        ctx.fillStyle = `rgb(${(label ? C1 : C0).join(",")})`;
        ctx.fill();
        ctx.lineWidth = ring ? 1.6 : 0.8;
        ctx.strokeStyle = ring ? "#000" : "#fff";
        ctx.stroke();
      }
    }
  }
  // A first-layer neuron's line, w1 x + w2 y + b = 0.
  const n = selectedNeuron();
  if (n && selected.layer === 0) {
    const [w1, w2] = n.weights;
    const b = n.bias;
    const [x0, x1] = state.domain.x;
    const [y0, y1] = state.domain.y;
    let ends;
    if (Math.abs(w2) > Math.abs(w1)) {
      ends = [[x0, -(w1 * x0 + b) / w2], [x1, -(w1 * x1 + b) / w2]];
    } else {
      ends = [[-(w2 * y0 + b) / w1, y0], [-(w2 * y1 + b) / w1, y1]];
    }
    const [a, c] = ends.map(([x, y]) => toCanvas(canvas, x, y));
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(c[0], c[1]);
    ctx.lineWidth = 2.5;
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = "#000";
    ctx.stroke();
    ctx.setLineDash([]);
  }
  canvas.dataset.drawn = String(state.version);
}

function selectedNeuron() {
  if (!selected || !state) return null;
  const layer = state.layers[selected.layer];
  return layer ? layer.neurons[selected.index] || null : null;
}

// The inputs x1 and x2 drawn as pictures too, as TensorFlow Playground does.
function inputPicture(axis) {
  const g = state.grid;
  const bytes = new Uint8Array(g * g);
  for (let r = 0; r < g; r++) {
    for (let c = 0; c < g; c++) {
      const t = axis === 0 ? (c + 0.5) / g : 1 - (r + 0.5) / g;
      bytes[r * g + c] = Math.round(t * 255);
    }
  }
  return bytes;
}

function drawNeurons() {
  const grid = $("#neuron-grid");
  const shape = ["input:2", ...state.layers.map((l) => `${l.name}:${l.neurons.length}`)].join(",");
  if (grid.dataset.shape !== shape) {
    grid.innerHTML = "";
    const inputs = document.createElement("div");
    inputs.className = "layer-col";
    inputs.innerHTML = '<div class="name">inputs</div>';
    for (let a = 0; a < 2; a++) {
      const c = document.createElement("canvas");
      c.width = 56;
      c.height = 56;
      c.className = "neuron input";
      c.title = a === 0 ? "x1" : "x2";
      c.dataset.axis = a;
      inputs.appendChild(c);
    }
    grid.appendChild(inputs);
    state.layers.forEach((layer, li) => {
      const col = document.createElement("div");
      col.className = "layer-col";
      const out = li === state.layers.length - 1;
      col.innerHTML = `<div class="name">${out ? "output" : layer.name} · ${layer.activation}</div>`;
      layer.neurons.forEach((_, ni) => {
        const c = document.createElement("canvas");
        c.width = 56;
        c.height = 56;
        c.className = "neuron";
        c.dataset.layer = li;
        c.dataset.index = ni;
        c.title = `${out ? "output" : layer.name} neuron ${ni + 1}`;
        c.addEventListener("click", () => {
          selected = { layer: li, index: ni };
          render();
        });
        col.appendChild(c);
      });
      grid.appendChild(col);
    });
    grid.dataset.shape = shape;
    if (selected && !selectedNeuron()) selected = null;
  }
  grid.querySelectorAll("canvas.input").forEach((c) => paint(c, inputPicture(Number(c.dataset.axis)), state.grid));
  grid.querySelectorAll("canvas.neuron:not(.input)").forEach((c) => {
    const n = state.layers[c.dataset.layer].neurons[c.dataset.index];
    paint(c, decode(n.picture), state.grid);
    c.classList.toggle("selected", !!selected && selected.layer == c.dataset.layer && selected.index == c.dataset.index);
  });
  grid.dataset.neurons = String(grid.querySelectorAll("canvas.neuron:not(.input)").length);
}

function fmt(v) {
  if (typeof v !== "number") return String(v);
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4);
}

function showNeuron() {
  const box = $("#neuron-info");
  const n = selectedNeuron();
  if (!n) {
    box.textContent = "Click a neuron to see its weights, its bias and its line.";
    return;
  }
  const layer = state.layers[selected.layer];
  const out = selected.layer === state.layers.length - 1;
  const ins = selected.layer === 0 ? ["x1", "x2"] : state.layers[selected.layer - 1].neurons.map((_, i) => `${state.layers[selected.layer - 1].name}[${i + 1}]`);
  const z = n.weights.map((w, i) => `${fmt(w)}·${ins[i]}`).join(" + ");
  const act = layer.activation;
  let text = `<b>${out ? "output" : layer.name} neuron ${selected.index + 1}</b>: ${act}(z), z = <code>${z} + ${fmt(n.bias)}</code><br>`;
  if (selected.layer === 0) {
    text += `A logistic regression of the inputs: its line <code>z = 0</code> is drawn dashed on the output plot.`;
  } else {
    text += `A logistic regression in the space of ${state.layers[selected.layer - 1].name}'s outputs: there its boundary is a plane, over the input plane the curve its picture shows.`;
  }
  box.innerHTML = text;
}

function drawCurve() {
  const canvas = $("#curve");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const h = state.history;
  if (!h.length) return;
  const maxE = Math.max(1, h[h.length - 1].epoch);
  const maxL = Math.max(0.1, ...h.map((p) => Math.max(p.train_loss, p.test_loss)));
  const pad = 24;
  const X = (e) => pad + (e / maxE) * (canvas.width - pad - 6);
  const Y = (l) => 6 + (1 - l / maxL) * (canvas.height - pad - 6);
  ctx.strokeStyle = "#ccc";
  ctx.beginPath();
  ctx.moveTo(pad, 6);
  ctx.lineTo(pad, canvas.height - pad);
  ctx.lineTo(canvas.width - 6, canvas.height - pad);
  ctx.stroke();
  ctx.fillStyle = "#777";
  ctx.font = "10px sans-serif";
  ctx.fillText(maxL.toFixed(2), 0, 12);
  ctx.fillText("0", 12, canvas.height - pad);
  ctx.fillText(`epoch ${maxE}`, canvas.width - 70, canvas.height - 8);
  for (const [key, colourName] of [["test_loss", "#999"], ["train_loss", "#222"]]) {
    ctx.strokeStyle = colourName;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    h.forEach((p, i) => (i ? ctx.lineTo(X(p.epoch), Y(p[key])) : ctx.moveTo(X(p.epoch), Y(p[key]))));
    ctx.stroke();
  }
}

// ---------------------------------------------------------------- tape tab

let tape = null; // the server's answer
let done = 0; // backward steps shown

$("#record").addEventListener("click", record);
$("#expression").addEventListener("keydown", (e) => { if (e.key === "Enter") record(); });
$("#neuron-example").addEventListener("click", () => {
  $("#expression").value = "sigmoid(w1*x1 + w2*x2 + b)";
  $("#values").value = "w1 = 0.5, w2 = -1.5, b = 0.1\nx1 = 2, x2 = 1";
  record();
});
$("#micrograd-example").addEventListener("click", () => {
  $("#expression").value = "tanh(a * b + a)";
  $("#values").value = "a = 2, b = -3";
  record();
});
$("#back-step").addEventListener("click", () => stepTo(done + 1));
$("#back-all").addEventListener("click", () => stepTo(tape.steps.length));
$("#back-restart").addEventListener("click", () => stepTo(0));

async function record() {
  const errBox = $("#expr-error");
  errBox.textContent = "";
  try {
    tape = await api("POST", "/api/tape", { expression: $("#expression").value, values: $("#values").value });
  } catch (e) {
    tape = null;
    const b = e.body || {};
    if (b.column) {
      const text = b.field === "values" ? $("#values").value.split("\n") : [$("#expression").value];
      // The column counts characters of the whole text; find its line.
      let col = b.column;
      let line = text[0];
      for (const l of text) {
        line = l;
        if (col <= l.length + 1) break;
        col -= l.length + 1;
      }
      errBox.textContent = `${b.field}: ${b.message}\n${line}\n${" ".repeat(Math.max(0, col - 1))}^ column ${b.column}`;
      errBox.dataset.column = b.column;
    } else {
      errBox.textContent = e.message;
    }
    drawTape();
    return;
  }
  done = 0;
  drawTape();
}

function short(vals) {
  if (vals.length === 1) return fmt(vals[0]);
  const parts = vals.slice(0, 4).map(fmt);
  return `[${parts.join(", ")}${vals.length > 4 ? ", ..." : ""}]`;
}

// The running gradient of every node after `k` backward steps, as backward fills it in.
function gradsAfter(k) {
  const g = new Map();
  if (!tape) return g;
  g.set(tape.output, [1]); // the seed: d output / d output
  for (let i = 0; i < k; i++) for (const c of tape.steps[i].inputs) g.set(c.node, c.total);
  return g;
}

function drawTape() {
  const body = $("#trace tbody");
  body.innerHTML = "";
  const has = !!tape;
  $("#back-step").disabled = !has || done >= (tape ? tape.steps.length : 0);
  $("#back-all").disabled = !has || done >= (tape ? tape.steps.length : 0);
  $("#back-restart").disabled = !has || done === 0;
  $("#dot").textContent = has ? tape.dot : "";
  if (!has) {
    $("#graph").innerHTML = "";
    $("#step-count").textContent = "";
    return;
  }
  const grads = gradsAfter(done);
  const step = done > 0 ? tape.steps[done - 1] : null;
  const targets = new Set(step ? step.inputs.map((c) => c.node) : []);
  for (const n of tape.nodes) {
    const tr = document.createElement("tr");
    tr.dataset.id = n.id;
    if (step && step.node === n.id) tr.classList.add("current");
    if (targets.has(n.id)) tr.classList.add("target");
    const g = grads.get(n.id);
    const cells = [n.id, n.op, n.inputs.map((i) => "#" + i).join(", "), n.label || "", JSON.stringify(n.shape), short(n.value)];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    td.className = "grad" + (g ? " filled" : "");
    td.textContent = g ? short(g) : n.requires_grad ? "" : "-";
    if (g) td.dataset.grad = JSON.stringify(g);
    if (n.grad) td.dataset.backward = JSON.stringify(n.grad);
    tr.appendChild(td);
    body.appendChild(tr);
  }
  $("#step-count").textContent = `${done} of ${tape.steps.length} backward steps`;
  const info = $("#step-info");
  if (!step) {
    info.innerHTML = `The Wengert list of <code>${escapeHtml($("#expression").value)}</code>: ${tape.nodes.length} nodes, recorded in order. Backward seeds the output #${tape.output} with gradient 1, then visits the nodes in reverse.`;
  } else {
    const node = tape.nodes[step.node];
    const adds = step.inputs.map((c) => `#${c.node}${tape.nodes[c.node].label ? " (" + tape.nodes[c.node].label + ")" : ""} += ${short(c.contribution)} → ${short(c.total)}`).join("<br>");
    info.innerHTML = `Step ${done}: node #${node.id} <b>${node.op}</b>, upstream gradient <code>${short(step.upstream)}</code>. Its backward adds to each input:<br><code>${adds}</code>`;
    if (done === tape.steps.length) {
      const leaves = tape.nodes.filter((n) => n.op === "leaf");
      const same = leaves.every((n) => JSON.stringify(grads.get(n.id) || null) === JSON.stringify(n.grad));
      info.innerHTML += `<br><br>Backward is done: every leaf has its gradient${same ? ", the same numbers <code>tape.backward</code> gives" : ""}.`;
      info.dataset.complete = same ? "same" : "different";
    }
  }
  drawGraph(grads, step, targets);
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

function drawGraph(grads, step, targets) {
  const svg = $("#graph");
  const nodes = tape.nodes;
  const depth = [];
  for (const n of nodes) depth[n.id] = n.inputs.length ? 1 + Math.max(...n.inputs.map((i) => depth[i])) : 0;
  const cols = [];
  for (const n of nodes) (cols[depth[n.id]] = cols[depth[n.id]] || []).push(n.id);
  const W = 150, H = 58, BW = 128, BH = 46;
  const pos = [];
  cols.forEach((ids, d) => ids.forEach((id, k) => { pos[id] = [10 + d * W, 10 + k * H]; }));
  const height = 20 + (Math.max(...cols.map((c) => c.length)) + 1) * H;
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${20 + cols.length * W} ${height}`);
  svg.setAttribute("width", Math.min(1200, 20 + cols.length * W));
  let out = '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#999"/></marker></defs>';
  for (const n of nodes) {
    const ins = [...new Set(n.inputs)];
    ins.forEach((i, k) => {
      const [x1, y1] = pos[i];
      const [x2, y2] = pos[n.id];
      const active = step && step.node === n.id;
      // Inputs arrive spread along the left side; an edge that skips columns bows below them.
      const ya = y1 + BH / 2;
      const yb = y2 + (BH * (k + 1)) / (ins.length + 1);
      const bow = depth[n.id] - depth[i] > 1 ? H * 0.8 : 0;
      out += `<path class="edge${active ? " active" : ""}" d="M${x1 + BW},${ya} C${x1 + BW + 40},${ya + bow} ${x2 - 40},${yb + bow} ${x2},${yb}"/>`;
    });
  }
  for (const n of nodes) {
    const [x, y] = pos[n.id];
    const cls = ["node", n.op === "leaf" ? "leaf" : n.op === "constant" ? "constant" : "", step && step.node === n.id ? "current" : "", targets.has(n.id) ? "target" : ""].join(" ");
    const g = grads.get(n.id);
    const title = `#${n.id} ${n.label ? n.label : n.op}`;
    out += `<g class="${cls}" data-id="${n.id}"><rect x="${x}" y="${y}" width="${BW}" height="${BH}" rx="4"/>`;
    out += `<text x="${x + 6}" y="${y + 14}">${escapeHtml(title.slice(0, 18))}</text>`;
    out += `<text x="${x + 6}" y="${y + 27}">= ${escapeHtml(short(n.value)).slice(0, 16)}</text>`;
    if (g) out += `<text class="grad" x="${x + 6}" y="${y + 40}">grad ${escapeHtml(short(g)).slice(0, 13)}</text>`;
    out += "</g>";
  }
  svg.innerHTML = out;
}

function stepTo(k) {
  if (!tape) return;
  done = Math.max(0, Math.min(k, tape.steps.length));
  drawTape();
}

async function loadFunctions() {
  try {
    const l = await api("GET", "/api/limits");
    $("#functions").textContent = "Functions: " + l.functions.map((f) => `${f.name}(${f.args === 1 ? "x" : "a, b"})`).join(", ") + ". Operators: + - * / ^ and @ (matrix product).";
  } catch (e) {
    /* the hint is optional */
  }
}

// ---------------------------------------------------------------- autopilot (tests, screenshots)

let pilotNetworkDone = false;
function autopilotNetwork() {
  if (pilotNetworkDone || !state) return;
  if (!state.running && state.epoch === 0 && !autopilotNetwork.started) {
    autopilotNetwork.started = true;
    action("start");
    return;
  }
  if (state.epoch >= 200) {
    pilotNetworkDone = true;
    action("pause").then(() => {
      stream.close(); // an open stream would hold a headless browser's virtual clock
      selected = { layer: 0, index: 0 };
      render();
      document.body.dataset.network = "done";
      if (autopilot === "all" || autopilot === "tape") autopilotTape();
    });
  }
}

async function autopilotTape() {
  showTab("tape");
  await record();
  while (tape && done < tape.steps.length) stepTo(done + 1);
  document.body.dataset.tape = "done";
  if (autopilot === "tape") {
    stepTo(Math.max(1, tape.steps.length - 1));
  }
  document.body.dataset.autopilot = "done";
}

loadFunctions();
openSession().catch((e) => { $("#config-error").textContent = "could not start a session: " + e.message; });
