//! Seeing the tape: the Wengert list as a table, and as a Graphviz drawing.

use std::fmt::Write as _;
use std::ops::Range;

use tapegrad_tensor::{Float, Tensor};

use crate::gradients::Gradients;
use crate::tape::{Store, Tape};

/// A short rendering of a tensor's values: the value itself for one element, else the first
/// few values.
pub(crate) fn abbrev<E: Float>(t: &Tensor<E>) -> String {
    let v = t.as_slice();
    let one = |x: E| {
        let x = x.to_f64();
        if x != 0.0 && (x.abs() >= 1e5 || x.abs() < 1e-3) && x.is_finite() {
            format!("{x:.3e}")
        } else {
            format!("{x:.4}")
        }
    };
    match v.len() {
        0 => "[]".to_string(),
        1 => one(v[0]),
        n if n <= 4 => format!(
            "[{}]",
            v.iter().map(|&x| one(x)).collect::<Vec<_>>().join(", ")
        ),
        _ => format!(
            "[{}, ...]",
            v[..3]
                .iter()
                .map(|&x| one(x))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn inputs_of(inputs: &[u32]) -> String {
    inputs
        .iter()
        .map(|i| format!("#{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table rows for nodes in `range`, with gradients when given; `mark` flags one row.
pub(crate) fn rows<E: Float>(
    store: &Store<E>,
    range: Range<usize>,
    grads: Option<&Gradients<'_, E>>,
    mark: Option<usize>,
) -> String {
    let mut header = vec!["id", "op", "inputs", "label", "shape", "value"];
    if grads.is_some() {
        header.push("grad");
    }
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for i in range {
        let node = &store.nodes[i];
        let mut op = match node.op.params() {
            p if p.is_empty() => store.op_name(i).to_string(),
            p => format!("{}({p})", store.op_name(i)),
        };
        if store.is_grad(i) {
            op.insert_str(0, "grad:");
        }
        let id = if mark == Some(i) {
            format!(">{i}")
        } else {
            format!("{i}")
        };
        let mut row = vec![
            id,
            op,
            inputs_of(store.inputs(i)),
            store.label(i).unwrap_or("").to_string(),
            format!("{:?}", store.shape(i)),
            abbrev(&store.value(i)),
        ];
        if let Some(g) = grads {
            row.push(match g.by_index(i) {
                Some(t) => abbrev(t),
                None if node.requires_grad => "0 (no path)".into(),
                None => "-".into(),
            });
        }
        table.push(row);
    }
    let cols = table[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "{cell:>w$}", w = widths[c]);
            } else {
                let _ = write!(line, "  {cell:<w$}", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '{' | '}' | '|' | '<' | '>' | '"' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

impl<E: Float> Tape<E> {
    /// The Wengert list as a table: one row per node with its id, op (and parameters), inputs,
    /// label, shape and abbreviated value.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::scalar(2.0)).named("a");
    /// let _ = a.sigmoid();
    /// let trace = tape.trace();
    /// assert!(trace.lines().nth(1).unwrap().contains("leaf"));
    /// assert!(trace.lines().nth(2).unwrap().contains("sigmoid  #0"));
    /// ```
    pub fn trace(&self) -> String {
        let store = self.store();
        rows(&store, 0..store.nodes.len(), None, None)
    }

    /// The table of [`Tape::trace`] with a gradient column: each node's gradient from `grads`,
    /// `0 (no path)` for nodes that need one but do not reach the loss, `-` for constants.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(3.0)).named("x");
    /// let y = x * x;
    /// let grads = tape.backward(y)?;
    /// let table = tape.trace_with(&grads);
    /// assert!(table.lines().nth(1).unwrap().ends_with("6.0000"), "{table}"); // dy/dx at x
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn trace_with(&self, grads: &Gradients<'_, E>) -> String {
        let store = self.store();
        rows(&store, 0..store.nodes.len(), Some(grads), None)
    }

    /// The graph in Graphviz DOT: one box per node showing id, op, label, shape and value, and
    /// an edge from each input to the node that reads it. Render with `dot -Tsvg`.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// let x = tape.var(Tensor::scalar(1.0)).named("x");
    /// let _ = x.exp();
    /// let dot = tape.to_dot();
    /// assert!(dot.starts_with("digraph") && dot.contains("exp") && dot.contains("n0 -> n1"));
    /// ```
    pub fn to_dot(&self) -> String {
        self.dot(None)
    }

    /// The drawing of [`Tape::to_dot`] with each node's gradient.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0)).named("x");
    /// let grads = tape.backward(x.exp())?;
    /// assert!(tape.to_dot_with(&grads).contains("grad 1"));
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn to_dot_with(&self, grads: &Gradients<'_, E>) -> String {
        self.dot(Some(grads))
    }

    fn dot(&self, grads: Option<&Gradients<'_, E>>) -> String {
        let store = self.store();
        let mut out = String::from(
            "digraph tape {\n  rankdir=LR;\n  node [shape=record, fontname=\"monospace\", fontsize=10];\n",
        );
        for (i, node) in store.nodes.iter().enumerate() {
            let mut title = format!("#{i} {}", store.op_name(i));
            let params = node.op.params();
            if !params.is_empty() {
                let _ = write!(title, "({params})");
            }
            if let Some(l) = store.label(i) {
                let _ = write!(title, " \"{l}\"");
            }
            let mut fields = vec![
                escape(&title),
                escape(&format!("shape {:?}", store.shape(i))),
                escape(&format!("value {}", abbrev(&store.value(i)))),
            ];
            if let Some(t) = grads.and_then(|g| g.by_index(i)) {
                fields.push(escape(&format!("grad {}", abbrev(t))));
            }
            let fill = match store.op_name(i) {
                "leaf" => "lightblue",
                "constant" | "detach" => "lightgrey",
                _ => "white",
            };
            // A gradient graph's nodes (Tape::grad) are dashed and tinted.
            let (style, fill) = if store.is_grad(i) {
                (
                    "\"filled,dashed\"",
                    if fill == "white" { "lightyellow" } else { fill },
                )
            } else {
                ("filled", fill)
            };
            let _ = writeln!(
                out,
                "  n{i} [label=\"{{{}}}\", style={style}, fillcolor={fill}];",
                fields.join("|")
            );
            for input in store.inputs(i) {
                let _ = writeln!(out, "  n{input} -> n{i};");
            }
        }
        out.push_str("}\n");
        out
    }
}
