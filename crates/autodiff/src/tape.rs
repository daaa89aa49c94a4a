//! The tape: a Wengert list of nodes in creation order, and the backward sweep over it.

use std::cell::{Cell, Ref, RefCell};
use std::sync::Arc;

use smallvec::SmallVec;
use tapegrad_tensor::{Float, Tensor};

use crate::error::{AutodiffError, Result};
use crate::gradients::Gradients;
use crate::ops::{BackwardCtx, Op};
use crate::var::Var;

/// Input node ids of one node, inline for up to two inputs (every op but `concat`).
pub(crate) type Inputs = SmallVec<[u32; 2]>;

/// One entry of the Wengert list.
pub(crate) struct Node<E: Float> {
    /// What computed the value, with the op's parameters.
    pub(crate) op: Op<E>,
    /// The ids of the nodes the op read, all smaller than this node's id.
    pub(crate) inputs: Inputs,
    /// The forward value.
    pub(crate) value: Tensor<E>,
    /// Where the extra tensor the backward needs (e.g. softmax probabilities) sits in the
    /// tape's saved arena, or `u32::MAX` for none.
    pub(crate) saved: u32,
    /// Where this node's gradient tensor sits among the tape's gradient slots, or `u32::MAX`
    /// for none. Every node that requires a gradient has a slot, except one-element nodes
    /// computed by ops: their gradient is a plain number (see [`Node::single`]).
    pub(crate) slot: u32,
    /// Whether a gradient flows to this node (a leaf var, or an op with such an input).
    pub(crate) requires_grad: bool,
    /// Whether the value holds exactly one element. Backward keeps such a node's gradient as a
    /// plain number beside the tensor slots, so a graph of scalars never builds a gradient
    /// tensor (leaves get theirs as a tensor at the end).
    pub(crate) single: bool,
}

/// User-given node names for traces and drawings, as (node id, name) in the order given; a later
/// entry for the same node wins. Kept beside the nodes: most nodes have none.
pub(crate) type Labels = Vec<(u32, Arc<str>)>;

/// The name of node `id`, if it has one.
pub(crate) fn label_of(labels: &[(u32, Arc<str>)], id: usize) -> Option<&str> {
    labels
        .iter()
        .rev()
        .find(|(i, _)| *i as usize == id)
        .map(|(_, l)| &**l)
}

/// The buffers of a dropped [`Gradients`], kept for the next backward pass: the tensor slots
/// and the one-element gradients.
pub(crate) type SpareGrads<E> = (Vec<Option<Tensor<E>>>, Vec<Option<E>>);

/// A tape that records every operation on its [`Var`]s, for reverse-mode differentiation.
///
/// Nodes are stored in creation order in one vector; [`Tape::backward`] walks it once in reverse
/// and accumulates each node's gradient into its inputs' gradients. A tape is reused across
/// training steps with [`Tape::clear`], which keeps its allocations.
///
/// A `Tape` belongs to one thread: it uses interior mutability (`RefCell`) so that `Var`s can be
/// `Copy` handles, and it is therefore `Send` but not `Sync`. Move it to another thread, or give
/// each thread its own; sharing one does not compile:
///
/// ```compile_fail
/// fn shared<T: Sync>(_: &T) {}
/// shared(&tapegrad_autodiff::Tape::<f32>::new());
/// ```
///
/// ```
/// use tapegrad_autodiff::Tape;
/// use tapegrad_tensor::Tensor;
///
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::scalar(3.0)).named("x");
/// let y = x * x + 2.0 * x; // dy/dx = 2x + 2
/// let grads = tape.backward(y)?;
/// assert_eq!(grads[x].item()?, 8.0);
/// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
/// ```
pub struct Tape<E: Float = f32> {
    pub(crate) nodes: RefCell<Vec<Node<E>>>,
    /// Node names (see [`Labels`]).
    pub(crate) labels: RefCell<Labels>,
    /// Tensors saved by forwards for backwards (the arena `Node::saved` indexes).
    saved: RefCell<Vec<Tensor<E>>>,
    /// Index lists ops keep (labels, selected rows, argmax positions).
    indices: RefCell<Vec<usize>>,
    /// Gradient buffers handed back by dropped `Gradients`, reused by the next backward.
    pub(crate) spare: RefCell<Option<SpareGrads<E>>>,
    /// The number of gradient slots handed out (see `Node::slot`).
    slots: Cell<u32>,
    recording: Cell<bool>,
    check_finite: Cell<bool>,
    /// The node of the first non-finite forward value found by the finite check, reported by
    /// the next fallible op or by `backward` (the error is built then, so it shows the label
    /// given with `named` right after the op).
    pending: Cell<Option<usize>>,
}

impl<E: Float> Default for Tape<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Float> Tape<E> {
    /// An empty tape.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty tape with room for `nodes` nodes before it reallocates.
    pub fn with_capacity(nodes: usize) -> Self {
        Tape {
            nodes: RefCell::new(Vec::with_capacity(nodes)),
            labels: RefCell::new(Vec::new()),
            saved: RefCell::new(Vec::new()),
            indices: RefCell::new(Vec::new()),
            spare: RefCell::new(None),
            slots: Cell::new(0),
            recording: Cell::new(true),
            check_finite: Cell::new(false),
            pending: Cell::new(None),
        }
    }

    /// A leaf that receives a gradient: a parameter or an input to differentiate by.
    pub fn var(&self, value: Tensor<E>) -> Var<'_, E> {
        self.push_leaf(Op::Leaf, value, true)
    }

    /// A leaf without a gradient: data, targets, fixed values.
    pub fn constant(&self, value: Tensor<E>) -> Var<'_, E> {
        self.push_leaf(Op::Constant, value, false)
    }

    fn push_leaf(&self, op: Op<E>, value: Tensor<E>, requires_grad: bool) -> Var<'_, E> {
        let requires_grad = requires_grad && self.recording.get();
        self.push_node(op, Inputs::new(), value, None, requires_grad)
    }

    /// The number of nodes recorded.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether no node is recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.borrow().is_empty()
    }

    /// Empties the tape, keeping its node buffer, so a training loop can reuse one tape.
    ///
    /// Taking `&mut self` guarantees that no `Var` and no [`Gradients`] of the old graph is
    /// still alive.
    pub fn clear(&mut self) {
        self.nodes.get_mut().clear();
        self.labels.get_mut().clear();
        self.saved.get_mut().clear();
        self.indices.get_mut().clear();
        self.slots.set(0);
        self.pending.set(None);
    }

    /// Runs `f` without recording gradients: ops inside still compute values (as nodes that no
    /// gradient flows through), but nothing inside reaches a leaf's gradient.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let w = tape.var(Tensor::scalar(2.0));
    /// let y = tape.no_grad(|| w * 3.0);
    /// let z = w * y;
    /// let grads = tape.backward(z)?;
    /// assert_eq!(grads[w].item()?, 6.0); // y is treated as a constant
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let was = self.recording.replace(false);
        let out = f();
        self.recording.set(was);
        out
    }

    /// Whether ops currently record gradient history (false inside [`Tape::no_grad`]).
    pub fn is_recording(&self) -> bool {
        self.recording.get()
    }

    /// Turns the finite check on or off (off by default). When on, every forward value and every
    /// gradient is checked for NaN and infinity, and the first one found stops the computation
    /// with [`AutodiffError::NonFinite`] naming the node, its op, label, phase, input shapes and
    /// the trace rows around it. Ops that cannot fail keep returning `Var`; the error is then
    /// reported by the next fallible op or by `backward`.
    pub fn set_check_finite(&self, on: bool) {
        self.check_finite.set(on);
    }

    /// Whether the finite check is on.
    pub fn check_finite(&self) -> bool {
        self.check_finite.get()
    }

    pub(crate) fn nodes(&self) -> Ref<'_, Vec<Node<E>>> {
        self.nodes.borrow()
    }

    /// Appends one node. All recording goes through here.
    #[inline]
    pub(crate) fn push_node(
        &self,
        op: Op<E>,
        inputs: Inputs,
        value: Tensor<E>,
        saved: Option<Tensor<E>>,
        requires_grad: bool,
    ) -> Var<'_, E> {
        let saved = match saved {
            Some(t) => {
                let mut arena = self.saved.borrow_mut();
                arena.push(t);
                (arena.len() - 1) as u32
            }
            None => u32::MAX,
        };
        let single = value.len() == 1;
        let slot = if requires_grad && (!single || inputs.is_empty()) {
            let n = self.slots.get();
            self.slots.set(n + 1);
            n
        } else {
            u32::MAX
        };
        let finite = !self.check_finite.get() || value.all_finite();
        let mut nodes = self.nodes.borrow_mut();
        let id = nodes.len();
        nodes.push(Node {
            op,
            inputs,
            value,
            saved,
            slot,
            requires_grad,
            single,
        });
        if !finite && self.pending.get().is_none() {
            self.pending.set(Some(id));
        }
        Var::new(self, id as u32)
    }

    /// Appends a rank-0 node computed by an elementwise op from rank-0 inputs: the scalar
    /// graph's fast path (no closure results to move, no shape to compute).
    #[inline]
    pub(crate) fn push_scalar(
        &self,
        op: Op<E>,
        inputs: Inputs,
        value: E,
        requires_grad: bool,
    ) -> Var<'_, E> {
        if self.check_finite.get() && !value.is_finite() && self.pending.get().is_none() {
            self.pending.set(Some(self.len()));
        }
        let mut nodes = self.nodes.borrow_mut();
        let id = nodes.len();
        nodes.push(Node {
            op,
            inputs,
            value: Tensor::scalar(value),
            saved: u32::MAX,
            slot: u32::MAX,
            requires_grad,
            single: true,
        });
        Var::new(self, id as u32)
    }

    /// Appends an index list to the arena and returns where it sits.
    pub(crate) fn push_indices(&self, list: &[usize]) -> (u32, u32) {
        let mut arena = self.indices.borrow_mut();
        let start = arena.len() as u32;
        arena.extend_from_slice(list);
        (start, list.len() as u32)
    }

    /// Returns the pending finite-check error, if any.
    pub(crate) fn take_pending(&self) -> Result<()> {
        if self.check_finite.get()
            && let Some(id) = self.pending.take()
        {
            let nodes = self.nodes.borrow();
            return crate::anomaly::check(
                &nodes,
                &self.labels.borrow(),
                id,
                &nodes[id].value,
                "forward",
            );
        }
        Ok(())
    }

    /// Gradients of `loss` with respect to every node that reaches it.
    ///
    /// The tape is walked once in reverse creation order; each node adds its contribution into
    /// its inputs' gradients. The tape itself is not changed, so calling `backward` again gives
    /// the same gradients.
    ///
    /// # Errors
    ///
    /// [`AutodiffError::NonScalarLoss`] when `loss` does not hold exactly one element,
    /// [`AutodiffError::ForeignVar`] when `loss` belongs to another tape, and
    /// [`AutodiffError::NonFinite`] from the finite check when it is on.
    pub fn backward(&self, loss: Var<'_, E>) -> Result<Gradients<'_, E>> {
        loss.check_tape(self, "backward")?;
        self.take_pending()?;
        let nodes = self.nodes.borrow();
        let root = loss.index();
        let loss_value = &nodes[root].value;
        if loss_value.len() != 1 {
            return Err(AutodiffError::NonScalarLoss {
                shape: loss_value.shape().to_vec(),
            });
        }
        let (mut tensors, mut scalars) = self.spare.borrow_mut().take().unwrap_or_default();
        tensors.clear();
        tensors.resize_with(self.slots.get() as usize, || None);
        scalars.clear();
        scalars.resize(root + 1, None);
        let (saved, indices) = (self.saved.borrow(), self.indices.borrow());
        let arenas = (&nodes[..], &saved[..], &indices[..]);
        if nodes[root].requires_grad {
            scalars[root] = Some(E::ONE);
        }
        let check = self.check_finite.get();
        for i in (0..=root).rev() {
            let node = &nodes[i];
            if !node.requires_grad {
                continue;
            }
            if node.single {
                let Some(g) = scalars[i] else {
                    continue;
                };
                if node.inputs.is_empty() {
                    tensors[node.slot as usize] = Some(Tensor::full(node.value.shape(), g));
                    continue;
                }
                let (before, _) = scalars.split_at_mut(i);
                if !scalar_backward(&nodes, node, g, before) {
                    let grad = Tensor::full(node.value.shape(), g);
                    let mut ctx = BackwardCtx::new(arenas, i, &grad, &mut tensors, before);
                    node.op.backward(&mut ctx)?;
                    ctx.finish();
                }
            } else {
                let (before, rest) = tensors.split_at_mut(node.slot as usize);
                let Some(grad) = rest[0].as_ref() else {
                    continue;
                };
                if node.inputs.is_empty() {
                    continue;
                }
                let (sbefore, _) = scalars.split_at_mut(i);
                let mut ctx = BackwardCtx::new(arenas, i, grad, before, sbefore);
                node.op.backward(&mut ctx)?;
                ctx.finish();
            }
            if check {
                for &input in node.inputs.iter() {
                    let n = &nodes[input as usize];
                    if n.single {
                        if let Some(g) = scalars[input as usize]
                            && !g.is_finite()
                        {
                            let t = Tensor::full(n.value.shape(), g);
                            crate::anomaly::check(
                                &nodes,
                                &self.labels.borrow(),
                                input as usize,
                                &t,
                                "backward",
                            )?;
                        }
                    } else if let Some(Some(g)) = tensors.get(n.slot as usize) {
                        crate::anomaly::check(
                            &nodes,
                            &self.labels.borrow(),
                            input as usize,
                            g,
                            "backward",
                        )?;
                    }
                }
            }
        }
        Ok(Gradients::new(self, nodes.len(), tensors, scalars))
    }
}

/// The backward of a one-element node whose op is elementwise (all its inputs hold one element
/// too): adds the op's scalar derivatives into the inputs' scalar gradients. Returns false,
/// doing nothing, for any other op.
#[inline]
fn scalar_backward<E: Float>(
    nodes: &[Node<E>],
    node: &Node<E>,
    g: E,
    scalars: &mut [Option<E>],
) -> bool {
    let first = |k: usize| {
        node.inputs
            .get(k)
            .and_then(|&j| nodes[j as usize].value.as_slice().first().copied())
            .unwrap_or(E::ZERO)
    };
    let y = node.value.as_slice()[0];
    let Some(d) = node.op.scalar_backward(g, first(0), first(1), y) else {
        return false;
    };
    for (&j, d) in node.inputs.iter().zip(d) {
        if nodes[j as usize].requires_grad {
            let acc = &mut scalars[j as usize];
            *acc = Some(match *acc {
                Some(a) => a + d,
                None => d,
            });
        }
    }
    true
}
