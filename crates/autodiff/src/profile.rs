//! A profile of the tape: per op kind, the nodes recorded, the bytes their values and saved
//! tensors hold, and (with profiling on) the time spent in forward and in the last backward.

use std::fmt;
use std::time::{Duration, Instant};

use tapegrad_tensor::Float;

use crate::tape::Tape;

/// Times measured while profiling: per node, the forward time (from the previous node's
/// recording, or from when the clock was started, to this node's) and the last backward's time.
#[derive(Default)]
pub(crate) struct Prof {
    /// When the last node was recorded (or the clock started).
    last: Option<Instant>,
    /// Forward nanoseconds per node id (0 for nodes recorded with profiling off).
    forward: Vec<u64>,
    /// Nanoseconds per node id in the last backward.
    backward: Vec<u64>,
}

impl Prof {
    /// Forgets every time and restarts the clock (when profiling).
    pub(crate) fn clear(&mut self, profiling: bool) {
        self.forward.clear();
        self.backward.clear();
        self.last = profiling.then(Instant::now);
    }

    /// Node `id` was just recorded: it gets the time since the previous one.
    pub(crate) fn forward_node(&mut self, id: usize) {
        let now = Instant::now();
        let spent = self.last.map_or(0, |t| (now - t).as_nanos() as u64);
        if self.forward.len() <= id {
            self.forward.resize(id + 1, 0);
        }
        self.forward[id] += spent;
        self.last = Some(now);
    }

    pub(crate) fn set_backward(&mut self, times: Vec<u64>) {
        self.backward = times;
        // What follows a backward (reading gradients, an optimizer) is not the next node's.
        self.last = Some(Instant::now());
    }
}

/// Times the nodes of one backward pass: each visit's time goes to the node visited.
pub(crate) struct BackwardClock {
    times: Vec<u64>,
    at: Option<(usize, Instant)>,
}

impl BackwardClock {
    pub(crate) fn start(nodes: usize) -> Self {
        BackwardClock {
            times: vec![0; nodes],
            at: None,
        }
    }

    /// The walk reached node `i`: the previous node's visit ends now.
    #[inline]
    pub(crate) fn tick(&mut self, i: usize) {
        let now = Instant::now();
        if let Some((j, t)) = self.at {
            self.times[j] += (now - t).as_nanos() as u64;
        }
        self.at = Some((i, now));
    }

    pub(crate) fn finish(mut self) -> Vec<u64> {
        if let Some((j, t)) = self.at {
            self.times[j] += t.elapsed().as_nanos() as u64;
        }
        self.times
    }
}

/// One op kind's share of a tape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileRow {
    /// The op's name as the trace shows it (`matmul`, `leaf`, a custom op's name), or `total`.
    pub op: String,
    /// Nodes recorded.
    pub nodes: usize,
    /// Bytes of the values the tape owns (a rank-0 value lives in its node record: 0 here).
    pub value_bytes: usize,
    /// Bytes of values the tape reads without owning (`var_shared`, `constant_shared` leaves).
    pub shared_bytes: usize,
    /// Bytes of tensors saved by forwards for backwards (softmax's probabilities, im2col
    /// columns, dropout masks).
    pub saved_bytes: usize,
    /// Time from the previous node's recording to this op's (its forward, with anything the
    /// caller did in between), summed; zero without profiling.
    pub forward: Duration,
    /// Time spent on these nodes in the last backward; zero without profiling.
    pub backward: Duration,
}

impl ProfileRow {
    /// Forward and backward time together.
    pub fn time(&self) -> Duration {
        self.forward + self.backward
    }

    fn add(&mut self, other: &ProfileRow) {
        self.nodes += other.nodes;
        self.value_bytes += other.value_bytes;
        self.shared_bytes += other.shared_bytes;
        self.saved_bytes += other.saved_bytes;
        self.forward += other.forward;
        self.backward += other.backward;
    }
}

/// What a tape holds and (with [`Tape::set_profiling`]) where its time went, per op kind:
/// [`Tape::profile`]. `Display` prints a table sorted by time (then bytes); the rows are plain
/// data for programs.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// One row per op kind, sorted by time, then by bytes, then by name.
    pub rows: Vec<ProfileRow>,
    /// The sums over all rows (`op` is `total`).
    pub total: ProfileRow,
    /// Bytes of the node records (a fixed size per node: 40 in f32).
    pub record_bytes: usize,
    /// Bytes of the index lists ops keep (labels, selected rows, argmax positions).
    pub index_bytes: usize,
    /// Whether times were measured.
    pub timed: bool,
}

impl Profile {
    /// Bytes the tape holds per node: records, owned values, saved tensors and index lists,
    /// divided by the node count (0 for an empty tape). Shared values are not counted.
    pub fn bytes_per_node(&self) -> f64 {
        let held =
            self.record_bytes + self.total.value_bytes + self.total.saved_bytes + self.index_bytes;
        if self.total.nodes == 0 {
            0.0
        } else {
            held as f64 / self.total.nodes as f64
        }
    }

    /// The row of one op kind.
    pub fn row(&self, op: &str) -> Option<&ProfileRow> {
        self.rows.iter().find(|r| r.op == op)
    }
}

fn bytes(n: usize) -> String {
    match n {
        n if n >= 10 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 10 << 10 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

impl fmt::Display for Profile {
    /// A table: op, nodes, owned value bytes, shared bytes, saved bytes, forward and backward
    /// microseconds, share of the time; then the totals and bytes per node.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_time = self.total.time().as_secs_f64();
        writeln!(
            f,
            "{:<32} {:>7} {:>10} {:>10} {:>10} {:>11} {:>11} {:>6}",
            "op", "nodes", "values", "shared", "saved", "forward us", "backward us", "time"
        )?;
        for r in self.rows.iter().chain([&self.total]) {
            let share = if total_time > 0.0 {
                format!("{:.0}%", 100.0 * r.time().as_secs_f64() / total_time)
            } else {
                "-".into()
            };
            writeln!(
                f,
                "{:<32} {:>7} {:>10} {:>10} {:>10} {:>11} {:>11} {:>6}",
                r.op,
                r.nodes,
                bytes(r.value_bytes),
                bytes(r.shared_bytes),
                bytes(r.saved_bytes),
                micros(r.forward),
                micros(r.backward),
                share
            )?;
        }
        write!(
            f,
            "{:.1} bytes per node (records {}, index lists {}){}",
            self.bytes_per_node(),
            bytes(self.record_bytes),
            bytes(self.index_bytes),
            if self.timed {
                ""
            } else {
                "; times not measured (Tape::set_profiling)"
            }
        )
    }
}

impl<E: Float> Tape<E> {
    /// Turns time measurement on or off (off by default). With it on, each recorded node is
    /// charged the time since the previous one was recorded (its forward, with whatever the
    /// caller did in between; the clock restarts at `set_profiling(true)`, at
    /// [`Tape::clear`] and after each backward), and each backward times every node it visits.
    /// Off, it costs one flag test per node.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// tape.set_profiling(true);
    /// let x = tape.var(Tensor::ones(&[256, 256]));
    /// let y = x.matmul(x)?.tanh().sum();
    /// tape.backward(y)?;
    /// let p = tape.profile();
    /// assert!(p.timed && p.row("matmul").unwrap().forward > std::time::Duration::ZERO);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn set_profiling(&self, on: bool) {
        self.profiling.set(on);
        self.watched.set(on || self.check_finite.get());
        if on {
            self.prof.borrow_mut().last = Some(Instant::now());
        }
    }

    /// Whether times are measured.
    ///
    /// ```
    /// let tape = tapegrad_autodiff::Tape::<f64>::new();
    /// assert!(!tape.is_profiling());
    /// tape.set_profiling(true);
    /// assert!(tape.is_profiling());
    /// ```
    pub fn is_profiling(&self) -> bool {
        self.profiling.get()
    }

    /// The tape's profile: per op kind, nodes, bytes of owned values, shared values and saved
    /// tensors, and the times measured with profiling on; totals and bytes per node.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// let x = tape.var(Tensor::ones(&[4, 8]));
    /// let w = tape.var(Tensor::ones(&[8, 2]));
    /// let y = x.matmul(w)?.softmax(1)?.sum();
    /// let p = tape.profile();
    /// assert_eq!(p.total.nodes, 5);
    /// assert_eq!(p.row("leaf").unwrap().value_bytes, (32 + 16) * 4);
    /// assert_eq!(p.row("matmul").unwrap().value_bytes, 8 * 4);
    /// assert_eq!(p.row("softmax").unwrap().value_bytes, 8 * 4);
    /// assert_eq!(p.row("sum").unwrap().value_bytes, 0); // one number, in its record
    /// println!("{p}");
    /// # let _ = y;
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn profile(&self) -> Profile {
        let store = self.store();
        let prof = self.prof.borrow();
        let elem = size_of::<E>();
        let mut rows: Vec<ProfileRow> = Vec::new();
        let mut saved = store.saved.iter().peekable();
        for i in 0..store.nodes.len() {
            let name = store.op_name(i);
            let at = match rows.iter().position(|r| r.op == name) {
                Some(k) => k,
                None => {
                    rows.push(ProfileRow {
                        op: name.to_string(),
                        ..ProfileRow::default()
                    });
                    rows.len() - 1
                }
            };
            let row = &mut rows[at];
            row.nodes += 1;
            let value = store.tensor(i).map_or(0, |t| t.len() * elem);
            if store.is_shared(i) {
                row.shared_bytes += value;
            } else {
                row.value_bytes += value;
            }
            while let Some((id, t)) = saved.peek() {
                match (*id as usize).cmp(&i) {
                    std::cmp::Ordering::Less => {
                        saved.next();
                    }
                    std::cmp::Ordering::Equal => {
                        row.saved_bytes += t.len() * elem;
                        saved.next();
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            let ns = |v: &[u64]| Duration::from_nanos(v.get(i).copied().unwrap_or(0));
            row.forward += ns(&prof.forward);
            row.backward += ns(&prof.backward);
        }
        rows.sort_by(|a, b| {
            b.time()
                .cmp(&a.time())
                .then((b.value_bytes + b.saved_bytes).cmp(&(a.value_bytes + a.saved_bytes)))
                .then(a.op.cmp(&b.op))
        });
        let mut total = ProfileRow {
            op: "total".into(),
            ..ProfileRow::default()
        };
        for r in &rows {
            total.add(r);
        }
        Profile {
            rows,
            total,
            record_bytes: store.nodes.len() * size_of::<crate::tape::Node<E>>(),
            index_bytes: store.indices.len() * size_of::<usize>() + store.links.len() * 4,
            timed: self.profiling.get() || !prof.forward.is_empty() || !prof.backward.is_empty(),
        }
    }
}
