//! The tape as data, for programs that show it: the Wengert list's rows ([`Tape::rows`]) and
//! the backward pass one node at a time ([`Tape::backward_steps`]).

use tapegrad_tensor::{Float, Tensor};

use crate::error::{AutodiffError, Result};
use crate::tape::{Tape, generic_backward};
use crate::var::Var;

/// One node of the Wengert list: what a row of [`Tape::trace`] prints, as data.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow<E: Float = f32> {
    /// The node's id (its position on the tape).
    pub id: usize,
    /// The op's name, with its parameters when it has any (`affine(2*x + 1)`), as in the trace.
    pub op: String,
    /// The ids of the nodes the op read, in argument order (a node read twice appears twice).
    pub inputs: Vec<usize>,
    /// The name given with [`Var::named`], if any.
    pub label: Option<String>,
    /// The value's shape.
    pub shape: Vec<usize>,
    /// The value.
    pub value: Tensor<E>,
    /// Whether a gradient flows to the node (a leaf var, or an op with such an input).
    pub requires_grad: bool,
    /// Whether [`Tape::grad`] recorded the node (part of a gradient graph).
    pub grad_graph: bool,
}

/// One node's backward, as [`Tape::backward_steps`] records it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackwardStep<E: Float = f32> {
    /// The node whose backward ran.
    pub node: usize,
    /// Its gradient when its backward ran: 1 for the loss, otherwise the sum of what every
    /// node reading it added.
    pub upstream: Tensor<E>,
    /// What its backward added to each input's gradient (the vector-Jacobian product), one
    /// entry per distinct input that needs a gradient, in argument order. An input read twice
    /// (`x * x`) gets one entry holding both terms.
    pub contributions: Vec<(usize, Tensor<E>)>,
}

impl<E: Float> Tape<E> {
    /// Every node of the tape as a [`TraceRow`], in recording order: the data behind
    /// [`Tape::trace`], for drawing the list yourself.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::scalar(2.0)).named("a");
    /// let y = (a * a).tanh();
    /// let rows = tape.rows();
    /// assert_eq!(rows.len(), 3);
    /// assert_eq!((rows[1].op.as_str(), &rows[1].inputs[..]), ("mul", &[0, 0][..]));
    /// assert_eq!(rows[0].label.as_deref(), Some("a"));
    /// assert_eq!(rows[2].value.item()?, y.item()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rows(&self) -> Vec<TraceRow<E>> {
        let store = self.store();
        (0..store.nodes.len())
            .map(|i| {
                let node = &store.nodes[i];
                let op = match node.op.params() {
                    p if p.is_empty() => store.op_name(i).to_string(),
                    p => format!("{}({p})", store.op_name(i)),
                };
                TraceRow {
                    id: i,
                    op,
                    inputs: store.inputs(i).iter().map(|&j| j as usize).collect(),
                    label: store.label(i).map(str::to_string),
                    shape: store.shape(i).to_vec(),
                    value: store.value(i).into_owned(),
                    requires_grad: node.requires_grad,
                    grad_graph: store.is_grad(i),
                }
            })
            .collect()
    }

    /// The backward pass of [`Tape::backward`] one node at a time: for each node the loss
    /// reaches, in the order backward visits them (from the loss down), its upstream gradient
    /// and what its own backward adds to each input. Leaves have no step. A node's upstream
    /// gradient is the sum of the contributions made to it in earlier steps.
    ///
    /// Each contribution is computed by the op's own backward, the one [`Tape::backward`]
    /// runs, into an empty gradient, so it is that node's term alone. Summed in step order, the
    /// contributions to a one-element node give backward's gradient bit for bit; for larger
    /// tensors, ops that accumulate in place (a product adding into the gradient) may round
    /// the last bit differently. This pass keeps every step's tensors: it is for looking at
    /// small graphs, not for training.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let (a, b) = (tape.var(Tensor::scalar(2.0)), tape.var(Tensor::scalar(-3.0)));
    /// let y = (a * b + a).tanh(); // micrograd's example
    /// let steps = tape.backward_steps(y)?;
    /// // tanh, then add, then mul: the loss first.
    /// let order: Vec<usize> = steps.iter().map(|s| s.node).collect();
    /// assert_eq!(order, vec![4, 3, 2]);
    /// assert_eq!(steps[0].upstream.item()?, 1.0);
    /// // a's gradient is what add and mul gave it.
    /// let to_a: f64 = steps.iter().flat_map(|s| &s.contributions)
    ///     .filter(|(j, _)| *j == a.index()).map(|(_, c)| c.item().unwrap()).sum();
    /// assert_eq!(to_a, tape.backward(y)?[a].item()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Tape::backward`]: [`AutodiffError::NonScalarLoss`] when `loss` does not hold
    /// exactly one element, [`AutodiffError::ForeignVar`] for a var of another tape, and
    /// [`AutodiffError::NonFinite`] from the finite check when it is on.
    pub fn backward_steps(&self, loss: Var<'_, E>) -> Result<Vec<BackwardStep<E>>> {
        loss.check_tape(self, "backward_steps")?;
        self.take_pending()?;
        let store = self.store();
        let nodes = &store.nodes[..];
        let root = loss.index();
        if !nodes[root].single {
            return Err(AutodiffError::NonScalarLoss {
                shape: store.shape(root).to_vec(),
            });
        }
        let slots = self.slots.get() as usize;
        // The gradients so far, and scratch space each node's backward writes its terms into.
        let (mut tensors, mut scalars) = (vec![None; slots], vec![None; root + 1]);
        let (mut term_t, mut term_s) = (vec![None; slots], vec![None; root + 1]);
        if nodes[root].requires_grad {
            scalars[root] = Some(E::ONE);
        }
        let mut steps = Vec::new();
        for i in (0..=root).rev() {
            let node = &nodes[i];
            let inputs = store.inputs(i);
            if !node.requires_grad || inputs.is_empty() {
                continue;
            }
            let upstream = if node.single {
                match scalars[i] {
                    Some(g) => Tensor::full(store.shape(i), g),
                    None => continue,
                }
            } else {
                match &tensors[node.slot as usize] {
                    Some(g) => Tensor::clone(g),
                    None => continue,
                }
            };
            let (before, _) = term_s.split_at_mut(i);
            generic_backward(&store, i, inputs, &upstream, &mut term_t, before)?;
            let mut contributions: Vec<(usize, Tensor<E>)> = Vec::with_capacity(inputs.len());
            for &j in inputs {
                let j = j as usize;
                if contributions.iter().any(|(k, _)| *k == j) {
                    continue;
                }
                let input = &nodes[j];
                let term = if input.single {
                    term_s[j]
                        .take()
                        .map(|g| (Tensor::full(store.shape(j), g), Some(g)))
                } else {
                    term_t[input.slot as usize].take().map(|t| (t, None))
                };
                let Some((term, scalar)) = term else {
                    continue;
                };
                // Added as backward adds: a one-element gradient as a number (first term
                // -0 + d = d), a tensor elementwise.
                match scalar {
                    Some(d) => {
                        let acc = &mut scalars[j];
                        *acc = Some(acc.unwrap_or(-E::ZERO) + d);
                    }
                    None => {
                        let acc = &mut tensors[input.slot as usize];
                        *acc = Some(match acc.take() {
                            Some(sum) => sum.add(&term)?,
                            None => term.clone(),
                        });
                    }
                }
                contributions.push((j, term));
            }
            steps.push(BackwardStep {
                node: i,
                upstream,
                contributions,
            });
        }
        Ok(steps)
    }
}
