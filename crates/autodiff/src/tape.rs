//! The tape: a Wengert list of nodes in creation order, and the backward sweep over it.

use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};
use std::sync::Arc;

use smallvec::SmallVec;
use tapegrad_tensor::{Float, Tensor, TensorError};

use crate::error::{AutodiffError, Result};
use crate::gradients::Gradients;
use crate::ops::{BackwardCtx, Op};
use crate::var::Var;

/// `Node::value` of a rank-0 node: its value is `Node::x`, no tensor is stored.
const RANK0: u32 = u32::MAX;
/// The bit of `Node::value` that says the value is a shared tensor ([`Store::shared`]).
const SHARED: u32 = 1 << 31;
/// `Node::arity` of a node whose inputs are listed in [`Store::links`].
const MANY: u8 = u8::MAX;
/// The most nodes a tape holds: records keep node ids as 32-bit numbers, and `u32::MAX` marks
/// "none". Past it, recording panics (see [`index32`]) rather than wrapping an id around.
const NODE_LIMIT: u32 = u32::MAX;
/// The most tensors of each kind (owned, shared) a tape holds: `Node::value` keeps the index
/// in 31 bits beside the `SHARED` bit.
const VALUE_LIMIT: u32 = SHARED;

/// `n`, a position in one of the tape's lists (`what`), as the 32-bit number its records keep,
/// which must stay below `limit`.
///
/// # Panics
///
/// When `n` is not below `limit`: a tape of over four billion nodes (about 160 GB of records
/// alone), which the records cannot number. Every recording op (`x * y` too, which returns no
/// `Result`) panics with this message there, as `Vec::push` does past its capacity, rather
/// than wrap an id around and give wrong gradients.
#[inline]
#[track_caller]
fn index32(n: usize, limit: u32, what: &'static str) -> u32 {
    if n < limit as usize {
        n as u32
    } else {
        too_many(n, limit, what)
    }
}

/// Makes room in a full node list: doubles it (from 64), up to `NODE_LIMIT` nodes in all, so
/// that no node ever gets an id of more than 32 bits, not even through the scalar path's
/// unchecked writes into spare room. (`reserve_exact` sets the capacity to what it is asked
/// for; `Vec::push`'s own doubling could pass the limit.)
///
/// # Panics
///
/// When the list already holds `NODE_LIMIT` nodes ([`index32`]).
#[cold]
#[inline(never)]
#[track_caller]
fn grow_nodes<E: Float>(nodes: &mut Vec<Node<E>>) {
    let len = nodes.len();
    if len < nodes.capacity() {
        return;
    }
    index32(len, NODE_LIMIT, "node");
    let want = len.saturating_mul(2).clamp(64, NODE_LIMIT as usize);
    nodes.reserve_exact(want - len);
}

/// [`index32`]'s panic, off the recording path.
#[cold]
#[inline(never)]
#[track_caller]
fn too_many(n: usize, limit: u32, what: &'static str) -> ! {
    panic!(
        "the tape cannot record {what} number {n}: its records number them in 32 bits, below \
         {limit} (clear the tape between steps, or record fewer nodes)"
    )
}

/// One entry of the Wengert list. It holds no tensor itself (the values live in
/// [`Store::values`]), so a graph of scalars is a dense array of small plain records: the
/// forward writes 56 bytes per node (f32), backward reads them back, and `clear` frees nothing
/// node by node.
pub(crate) struct Node<E: Float> {
    /// What computed the value, with the op's parameters.
    pub(crate) op: Op<E>,
    /// The input ids when `arity <= 2`; for more inputs (`concat`), `ids[0]` is where the list
    /// starts in [`Store::links`] and `ids[1]` how many there are.
    ids: [u32; 2],
    /// The number of inputs, or `MANY` for a list in [`Store::links`].
    arity: u8,
    /// Where the value sits in [`Store::values`], or with the `SHARED` bit in
    /// [`Store::shared`], or `RANK0` when the value is rank 0 and held in `x`.
    value: u32,
    /// Where this node's gradient tensor sits among the tape's gradient slots, or `u32::MAX`
    /// for none. Every node that requires a gradient has a slot, except one-element nodes
    /// computed by ops: their gradient is a plain number (see [`Node::single`]).
    pub(crate) slot: u32,
    /// The first element of the value (its only one when `single`), read by the scalar paths
    /// without going through a tensor; zero for an empty value.
    pub(crate) x: E,
    /// Whether a gradient flows to this node (a leaf var, or an op with such an input).
    pub(crate) requires_grad: bool,
    /// Whether the value holds exactly one element. Backward keeps such a node's gradient as a
    /// plain number beside the tensor slots, so a graph of scalars never builds a gradient
    /// tensor (leaves get theirs as a tensor at the end).
    pub(crate) single: bool,
    /// What the scalar backward ([`scalar_run`]) does with this node, fixed when it is
    /// recorded: one byte to test per node instead of three.
    run: Run,
}

/// What [`scalar_run`] does with a node, fixed when it is recorded: its kind in the low two
/// bits (`STOP`, `PASS`, `UNARY`, `BINARY`; the last two have the `STEP` bit), and for the last
/// two, where each input's contribution goes (`A`, `B`, `CARRY_A`, `CARRY_B`, `SAME`). An
/// input's `requires_grad` and its place (the node just below or not) never change once
/// recorded, so the backward tests bits of the byte it loads with the node rather than reading
/// each input's record and comparing ids: a probe of W1 (a chain of scalars) runs about 7%
/// faster (7.66 -> 7.11 ns a node, alternated runs), for about 16 more instructions when a node
/// is recorded, hidden behind the chain's latency.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
struct Run(u8);

impl Run {
    /// Stops: the general loop takes the node (a tensor, a leaf that requires a gradient, an op
    /// of more inputs).
    const STOP: Run = Run(0);
    /// Passes over it: a one-element node no gradient flows to.
    const PASS: Run = Run(1);
    /// Set for the two kinds `scalar_run` steps through.
    const STEP: u8 = 0b10;
    /// A one-element node computed by an op of one input that requires a gradient.
    const UNARY: u8 = 0b10;
    /// A one-element node computed by an op of two inputs that requires a gradient.
    const BINARY: u8 = 0b11;
    /// The first input takes a gradient, added into its slot.
    const A: u8 = 1 << 2;
    /// The second input takes a gradient, added into its slot.
    const B: u8 = 1 << 3;
    /// The first input takes a gradient and is the node just below: its contribution is
    /// carried in a register to the next node backward, not added into its slot.
    const CARRY_A: u8 = 1 << 4;
    /// As `CARRY_A`, for the second input.
    const CARRY_B: u8 = 1 << 5;
    /// Both inputs are one node (`x * x`): both contributions go into its slot, in order
    /// (with `A` when it takes a gradient).
    const SAME: u8 = 1 << 6;

    /// The kind of node `id` with these properties: `ids` its inputs (when `arity` is 1 or
    /// 2) and `wants` whether each of them requires a gradient.
    #[inline(always)]
    fn of(
        id: usize,
        (single, requires_grad): (bool, bool),
        arity: u8,
        ids: [u32; 2],
        wants: [bool; 2],
    ) -> Run {
        let kind = match (single, requires_grad, arity) {
            (false, _, _) => return Run::STOP,
            (true, false, _) => return Run::PASS,
            (true, true, 1) => Run::UNARY,
            (true, true, 2) => Run::BINARY,
            (true, true, _) => return Run::STOP,
        };
        let below = id.wrapping_sub(1);
        let [j, k] = ids.map(|v| v as usize);
        if kind == Run::BINARY && j == k {
            return Run(kind | Run::SAME | if wants[0] { Run::A } else { 0 });
        }
        let mut bits = kind;
        if wants[0] {
            bits |= if j == below { Run::CARRY_A } else { Run::A };
        }
        if kind == Run::BINARY && wants[1] {
            bits |= if k == below { Run::CARRY_B } else { Run::B };
        }
        Run(bits)
    }

    /// Whether all of `bits` are set.
    #[inline(always)]
    fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

impl<E: Float> Node<E> {
    /// The record of a rank-0 node computed by an elementwise op of `arity` inputs, with value
    /// `x`. The op is rebuilt variant by variant, so its tag and parameters are stored straight
    /// into the record (see [`Op::rebuilt`]).
    #[inline(always)]
    fn scalar(op: Op<E>, ids: [u32; 2], arity: u8, requires_grad: bool, x: E, run: Run) -> Self {
        Node {
            op: op.rebuilt(),
            ids,
            arity,
            value: RANK0,
            slot: u32::MAX,
            x,
            requires_grad,
            single: true,
            run,
        }
    }

    /// Whether the value is rank 0 (shape `[]`, held in `x`): elementwise ops on such nodes
    /// take the scalar fast path.
    #[inline]
    pub(crate) fn rank0(&self) -> bool {
        self.value == RANK0
    }

    /// The ids of the nodes the op read, all smaller than this node's id.
    #[inline]
    pub(crate) fn inputs<'a>(&'a self, links: &'a [u32]) -> &'a [u32] {
        if self.arity != MANY {
            &self.ids[..self.arity as usize]
        } else {
            let [start, len] = self.ids.map(|v| v as usize);
            &links[start..start + len]
        }
    }
}

/// A value being recorded: owned by the tape, or shared with its caller.
enum Value<E: Float> {
    Owned(Tensor<E>),
    Shared(Arc<Tensor<E>>),
}

/// Everything a tape records, behind one `RefCell`.
#[derive(Default)]
pub(crate) struct Store<E: Float> {
    /// The Wengert list.
    pub(crate) nodes: Vec<Node<E>>,
    /// The values of the nodes that are not rank 0.
    pub(crate) values: Vec<Tensor<E>>,
    /// The values of leaves recorded from shared tensors ([`Tape::var_shared`]), not copied.
    pub(crate) shared: Vec<Arc<Tensor<E>>>,
    /// Input lists of nodes with more than two inputs.
    pub(crate) links: Vec<u32>,
    /// User-given node names for traces and drawings, as (node id, name) in the order given
    /// (a later entry for the same node wins), the first [`Store::labels_used`] of them. The
    /// rest are the names of the last step that named nodes, kept through [`Tape::clear`] so
    /// that the next step naming its nodes alike takes them back ([`crate::Var::named_arc`])
    /// instead of cloning each `Arc` again (an atomic increment, and a decrement when dropped).
    pub(crate) labels: Vec<(u32, Arc<str>)>,
    /// How many of [`Store::labels`] name this step's nodes.
    pub(crate) labels_used: usize,
    /// Tensors saved by forwards for backwards (e.g. softmax probabilities), by node id in
    /// increasing order (few nodes save one, so they are found by bisection, not kept in every
    /// node).
    pub(crate) saved: Vec<(u32, Tensor<E>)>,
    /// Index lists ops keep (labels, selected rows, argmax positions).
    pub(crate) indices: Vec<usize>,
    /// The user-defined ops of `Op::Custom` nodes, by the index the node holds.
    pub(crate) customs: Vec<Arc<dyn crate::custom::CustomOp<E>>>,
    /// The node ranges `start..end` that [`Tape::grad`] recorded (a gradient graph), in order.
    pub(crate) grad_ranges: Vec<(u32, u32)>,
}

impl<E: Float> Store<E> {
    /// The name of node `i`'s op: the op's own, or a custom op's [`CustomOp::name`].
    ///
    /// [`CustomOp::name`]: crate::CustomOp::name
    pub(crate) fn op_name(&self, i: usize) -> &str {
        match self.nodes[i].op {
            crate::ops::Op::Custom { index } => self.customs[index as usize].name(),
            ref op => op.name(),
        }
    }

    /// The input ids of node `i`.
    #[inline]
    pub(crate) fn inputs(&self, i: usize) -> &[u32] {
        self.nodes[i].inputs(&self.links)
    }

    /// The stored value tensor of node `i`, or `None` for a rank-0 node (see [`Store::value`]).
    #[inline]
    pub(crate) fn tensor(&self, i: usize) -> Option<&Tensor<E>> {
        match self.nodes[i].value {
            RANK0 => None,
            v if v & SHARED != 0 => Some(&*self.shared[(v & !SHARED) as usize]),
            v => Some(&self.values[v as usize]),
        }
    }

    /// The value of node `i` (built for a rank-0 node, which stores none).
    pub(crate) fn value(&self, i: usize) -> Cow<'_, Tensor<E>> {
        match self.tensor(i) {
            Some(t) => Cow::Borrowed(t),
            None => Cow::Owned(Tensor::scalar(self.nodes[i].x)),
        }
    }

    /// The shape of node `i`'s value.
    #[inline]
    pub(crate) fn shape(&self, i: usize) -> &[usize] {
        self.tensor(i).map_or(&[], |t| t.shape())
    }

    /// Sets leaf `i`'s value to a copy of `t` (of the recorded shape): in place into the tape's
    /// own buffer, or, for a shared leaf, into a buffer of its own from then on.
    pub(crate) fn set_value(&mut self, i: usize, t: &Tensor<E>) {
        let node = &mut self.nodes[i];
        node.x = t.as_slice().first().copied().unwrap_or(E::ZERO);
        match node.value {
            RANK0 => {}
            v if v & SHARED != 0 => {
                let arc = &mut self.shared[(v & !SHARED) as usize];
                match Arc::get_mut(arc) {
                    Some(own) => own.as_mut_slice().copy_from_slice(t.as_slice()),
                    None => *arc = Arc::new(t.clone()),
                }
            }
            v => self.values[v as usize]
                .as_mut_slice()
                .copy_from_slice(t.as_slice()),
        }
    }

    /// Takes node `i`'s own value tensor out (leaving an empty rank-0 stand-in, no
    /// allocation), to be recomputed in place and put back with [`Store::put_value`]; `None`
    /// for a rank-0 or shared value.
    pub(crate) fn take_value(&mut self, i: usize) -> Option<Tensor<E>> {
        match self.nodes[i].value {
            RANK0 => None,
            v if v & SHARED != 0 => None,
            v => Some(std::mem::replace(
                &mut self.values[v as usize],
                Tensor::scalar(E::ZERO),
            )),
        }
    }

    /// Puts back a value taken by [`Store::take_value`], recomputed.
    pub(crate) fn put_value(&mut self, i: usize, t: Tensor<E>) {
        let node = &mut self.nodes[i];
        node.x = t.as_slice().first().copied().unwrap_or(E::ZERO);
        let v = node.value;
        debug_assert!(v != RANK0 && v & SHARED == 0, "a value of the tape's own");
        self.values[(v & !SHARED) as usize] = t;
    }

    /// Stores node `i`'s recomputed value, saved tensor and index lists.
    pub(crate) fn set_recomputed(&mut self, i: usize, r: crate::ops::replay::Recomputed<E>) {
        let node = &mut self.nodes[i];
        node.x = r.value.as_slice().first().copied().unwrap_or(E::ZERO);
        match node.value {
            RANK0 => {}
            v if v & SHARED != 0 => unreachable!("only leaves hold shared values"),
            v => {
                debug_assert_eq!(self.values[v as usize].shape(), r.value.shape());
                self.values[v as usize] = r.value;
            }
        }
        if let Some(t) = r.saved
            && let Ok(at) = self.saved.binary_search_by_key(&(i as u32), |(id, _)| *id)
        {
            self.saved[at].1 = t;
        }
        if let Some((start, list)) = r.indices {
            let start = start as usize;
            self.indices[start..start + list.len()].copy_from_slice(&list);
        }
    }

    /// Whether node `i`'s value is a shared tensor ([`Tape::var_shared`]).
    pub(crate) fn is_shared(&self, i: usize) -> bool {
        let v = self.nodes[i].value;
        v != RANK0 && v & SHARED != 0
    }

    /// Whether node `i` belongs to a gradient graph recorded by [`Tape::grad`].
    pub(crate) fn is_grad(&self, i: usize) -> bool {
        let i = i as u32;
        self.grad_ranges.iter().any(|&(a, b)| a <= i && i < b)
    }

    /// The name of node `i`, if it has one.
    pub(crate) fn label(&self, i: usize) -> Option<&str> {
        let used = self.labels.get(..self.labels_used)?;
        used.iter()
            .rev()
            .find(|(id, _)| *id as usize == i)
            .map(|(_, l)| &**l)
    }

    /// Empties every arena, keeping their allocations.
    fn clear(&mut self) {
        self.nodes.clear();
        self.values.clear();
        self.shared.clear();
        self.links.clear();
        // This step's names stay for the next step; the last one's that this step did not
        // take back go. A clear of a tape that named nothing (a second clear) keeps them all.
        if self.labels_used > 0 {
            self.labels.truncate(self.labels_used);
            self.labels_used = 0;
        }
        self.saved.clear();
        self.indices.clear();
        self.customs.clear();
        self.grad_ranges.clear();
    }
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
    pub(crate) store: RefCell<Store<E>>,
    /// Gradient buffers handed back by dropped `Gradients`, reused by the next backward.
    pub(crate) spare: RefCell<Option<SpareGrads<E>>>,
    /// The number of gradient slots handed out (see `Node::slot`).
    pub(crate) slots: Cell<u32>,
    recording: Cell<bool>,
    pub(crate) check_finite: Cell<bool>,
    /// Whether forward and backward times are measured ([`Tape::set_profiling`]).
    pub(crate) profiling: Cell<bool>,
    /// `check_finite || profiling`: the one flag the scalar fast path tests per node.
    pub(crate) watched: Cell<bool>,
    /// The times measured while profiling.
    pub(crate) prof: RefCell<crate::profile::Prof>,
    /// The node of the first non-finite forward value found by the finite check, reported by
    /// the next fallible op or by `backward` (the error is built then, so it shows the label
    /// given with `named` right after the op).
    pub(crate) pending: Cell<Option<usize>>,
    /// Whether [`Tape::replay`] has run since the last [`Tape::clear`]: it changes recorded
    /// values under live vars, so from then on the scalar path reads inputs from the records
    /// rather than from the vars (see `Var::x`).
    pub(crate) replayed: Cell<bool>,
}

impl<E: Float> Default for Tape<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Float> Tape<E> {
    /// An empty tape.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// assert!(tape.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty tape with room for `nodes` nodes before it reallocates.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::with_capacity(1000);
    /// let x = tape.var(Tensor::ones(&[3]));
    /// assert_eq!((tape.len(), x.index()), (1, 0));
    /// ```
    ///
    /// # Panics
    ///
    /// Where [`Tape::try_with_capacity`] returns an error, with its message (never an abort).
    #[track_caller]
    pub fn with_capacity(nodes: usize) -> Self {
        match Self::try_with_capacity(nodes) {
            Ok(tape) => tape,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`Tape::with_capacity`], with an error instead of a panic when the room cannot be had.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// assert_eq!(Tape::<f32>::try_with_capacity(10)?.len(), 0);
    /// // A tape numbers its nodes in 32 bits.
    /// assert!(Tape::<f32>::try_with_capacity(1 << 33).is_err());
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`](tapegrad_tensor::TensorError::Invalid) for room past the
    /// 4,294,967,295 nodes a tape can number, and
    /// [`TensorError::Alloc`](tapegrad_tensor::TensorError::Alloc), naming the bytes, when the
    /// memory cannot be had.
    pub fn try_with_capacity(nodes: usize) -> Result<Self> {
        const OP: &str = "Tape::with_capacity";
        if nodes > NODE_LIMIT as usize {
            return Err(TensorError::Invalid {
                op: OP,
                reason: format!(
                    "room for {nodes} nodes: a tape numbers its nodes in 32 bits, {NODE_LIMIT} \
                     at most"
                ),
            }
            .into());
        }
        let mut list = Vec::new();
        list.try_reserve_exact(nodes)
            .map_err(|_| TensorError::Alloc {
                op: OP,
                shape: vec![nodes],
                bytes: nodes as u128 * size_of::<Node<E>>() as u128,
            })?;
        Ok(Tape {
            store: RefCell::new(Store {
                nodes: list,
                ..Store::default()
            }),
            spare: RefCell::new(None),
            slots: Cell::new(0),
            recording: Cell::new(true),
            check_finite: Cell::new(false),
            profiling: Cell::new(false),
            watched: Cell::new(false),
            prof: RefCell::new(crate::profile::Prof::default()),
            pending: Cell::new(None),
            replayed: Cell::new(false),
        })
    }

    /// A leaf that receives a gradient: a parameter or an input to differentiate by.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let w = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// assert!(w.requires_grad());
    /// assert_eq!(tape.backward(w.sum())?[w].to_vec(), vec![1.0, 1.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn var(&self, value: Tensor<E>) -> Var<'_, E> {
        self.push_leaf(Op::Leaf, value, true)
    }

    /// A leaf without a gradient: data, targets, fixed values.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Tensor::scalar(3.0));
    /// let w = tape.var(Tensor::scalar(2.0));
    /// let grads = tape.backward(w * x)?;
    /// assert!(!x.requires_grad() && !grads.reaches(x));
    /// assert_eq!(grads[w].item()?, 3.0);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn constant(&self, value: Tensor<E>) -> Var<'_, E> {
        self.push_leaf(Op::Constant, value, false)
    }

    /// A leaf that receives a gradient, reading a shared tensor without copying it: the way to
    /// hand a tape a large parameter or input every step for the price of a reference count
    /// (`Arc::clone`). The tape holds the `Arc` until [`Tape::clear`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let w = Arc::new(Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2])?);
    /// let tape = Tape::<f64>::new();
    /// let v = tape.var_shared(Arc::clone(&w));
    /// let grads = tape.backward((v * v).sum())?;
    /// assert_eq!(grads[v].to_vec(), vec![2.0, 4.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn var_shared(&self, value: Arc<Tensor<E>>) -> Var<'_, E> {
        self.push_shared(Op::Leaf, value, true)
    }

    /// A leaf without a gradient reading a shared tensor without copying it (data, targets),
    /// as [`Tape::var_shared`] does for vars.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// use std::sync::Arc;
    /// let data = Arc::new(Tensor::<f32>::ones(&[1000, 8]));
    /// let tape = Tape::new();
    /// let x = tape.constant_shared(Arc::clone(&data)); // no copy of the 8,000 values
    /// assert_eq!(Arc::strong_count(&data), 2);
    /// assert_eq!(x.shape().as_slice(), &[1000, 8]);
    /// ```
    pub fn constant_shared(&self, value: Arc<Tensor<E>>) -> Var<'_, E> {
        self.push_shared(Op::Constant, value, false)
    }

    fn push_leaf(&self, op: Op<E>, value: Tensor<E>, requires_grad: bool) -> Var<'_, E> {
        let requires_grad = requires_grad && self.recording.get();
        self.push_node(op, &[], value, None, requires_grad)
    }

    fn push_shared(&self, op: Op<E>, value: Arc<Tensor<E>>, requires_grad: bool) -> Var<'_, E> {
        let requires_grad = requires_grad && self.recording.get();
        self.push_value(op, &[], Value::Shared(value), None, requires_grad)
    }

    /// The number of nodes recorded.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(1.0));
    /// let _y = x.exp() + x; // two op nodes
    /// assert_eq!(tape.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.store.borrow().nodes.len()
    }

    /// Whether no node is recorded.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let mut tape = Tape::<f32>::new();
    /// tape.var(Tensor::scalar(1.0));
    /// assert!(!tape.is_empty());
    /// tape.clear();
    /// assert!(tape.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the tape, keeping its buffers, so a training loop can reuse one tape.
    ///
    /// Taking `&mut self` guarantees that no `Var` and no [`Gradients`] of the old graph is
    /// still alive.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let mut tape = Tape::<f64>::new();
    /// for step in 0..3 {
    ///     tape.clear(); // one tape, reused: no Var of the last step survives this line
    ///     let x = tape.var(Tensor::scalar(step as f64));
    ///     let grads = tape.backward(x * x)?;
    ///     assert_eq!(grads[x].item()?, 2.0 * step as f64);
    /// }
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn clear(&mut self) {
        self.store.get_mut().clear();
        self.prof.get_mut().clear(self.profiling.get());
        self.slots.set(0);
        self.pending.set(None);
        self.replayed.set(false);
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
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// assert!(tape.is_recording());
    /// assert!(!tape.no_grad(|| tape.is_recording()));
    /// ```
    pub fn is_recording(&self) -> bool {
        self.recording.get()
    }

    /// Turns the finite check on or off (off by default). When on, every forward value and every
    /// gradient is checked for NaN and infinity, and the first one found stops the computation
    /// with [`AutodiffError::NonFinite`] naming the node, its op, label, phase, input shapes and
    /// the trace rows around it. Ops that cannot fail keep returning `Var`; the error is then
    /// reported by the next fallible op or by `backward`.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// tape.set_check_finite(true);
    /// let x = tape.var(Tensor::scalar(-1.0)).named("x");
    /// let y = x.ln(); // NaN: reported by the next fallible call
    /// let err = tape.backward(y).unwrap_err();
    /// assert!(err.to_string().contains("ln"), "{err}");
    /// ```
    pub fn set_check_finite(&self, on: bool) {
        self.check_finite.set(on);
        self.watched.set(on || self.profiling.get());
    }

    /// Whether the finite check is on.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// assert!(!tape.check_finite());
    /// tape.set_check_finite(true);
    /// assert!(tape.check_finite());
    /// ```
    pub fn check_finite(&self) -> bool {
        self.check_finite.get()
    }

    /// Everything recorded, borrowed.
    #[inline]
    pub(crate) fn store(&self) -> Ref<'_, Store<E>> {
        self.store.borrow()
    }

    /// Appends one node. All recording of tensor values goes through here.
    pub(crate) fn push_node(
        &self,
        op: Op<E>,
        inputs: &[u32],
        value: Tensor<E>,
        saved: Option<Tensor<E>>,
        requires_grad: bool,
    ) -> Var<'_, E> {
        self.push_value(op, inputs, Value::Owned(value), saved, requires_grad)
    }

    /// Appends one node holding `value` (owned or shared; a rank-0 value goes into the node).
    /// Inlined into its two callers, so that a shared leaf's recording (no inputs, nothing
    /// saved) is compiled without the branches for them.
    #[inline(always)]
    fn push_value(
        &self,
        op: Op<E>,
        inputs: &[u32],
        value: Value<E>,
        saved: Option<Tensor<E>>,
        requires_grad: bool,
    ) -> Var<'_, E> {
        let t = match &value {
            Value::Owned(t) => t,
            Value::Shared(t) => &**t,
        };
        let single = t.len() == 1;
        let x = t.as_slice().first().copied().unwrap_or(E::ZERO);
        let (finite, rank0) = (!self.check_finite.get() || t.all_finite(), t.rank() == 0);
        let slot = if requires_grad && (!single || inputs.is_empty()) {
            let n = self.slots.get();
            self.slots.set(n + 1);
            n
        } else {
            u32::MAX
        };
        let mut store = self.store.borrow_mut();
        let store = &mut *store;
        if store.nodes.len() == store.nodes.capacity() {
            grow_nodes(&mut store.nodes);
        }
        // Below the capacity, which `grow_nodes` keeps within `NODE_LIMIT`.
        let id = store.nodes.len() as u32;
        if let Some(t) = saved {
            store.saved.push((id, t));
        }
        let value = match value {
            _ if rank0 => RANK0,
            Value::Owned(t) => {
                let at = index32(store.values.len(), VALUE_LIMIT, "tensor value");
                store.values.push(t);
                at
            }
            Value::Shared(t) => {
                let at = index32(store.shared.len(), VALUE_LIMIT, "shared tensor");
                store.shared.push(t);
                at | SHARED
            }
        };
        let (ids, arity) = match *inputs {
            [] => ([0, 0], 0),
            [a] => ([a, 0], 1),
            [a, b] => ([a, b], 2),
            _ => {
                // The list's end is a 32-bit number, so its start and length are too.
                let end = index32(store.links.len() + inputs.len(), u32::MAX, "input link");
                store.links.extend_from_slice(inputs);
                let len = inputs.len() as u32;
                ([end - len, len], MANY)
            }
        };
        let wants = |at: u32| {
            store
                .nodes
                .get(at as usize)
                .is_some_and(|n| n.requires_grad)
        };
        // Inputs' records are read only for the nodes the scalar backward steps through.
        let wants = if single && requires_grad && matches!(arity, 1 | 2) {
            [wants(ids[0]), wants(ids[1])]
        } else {
            [false; 2]
        };
        let run = Run::of(id as usize, (single, requires_grad), arity, ids, wants);
        store.nodes.push(Node {
            op,
            ids,
            arity,
            value,
            slot,
            x,
            requires_grad,
            single,
            run,
        });
        let id = id as usize;
        if !finite && self.pending.get().is_none() {
            self.pending.set(Some(id));
        }
        if self.profiling.get() {
            self.prof.borrow_mut().forward_node(id);
        }
        Var::new(self, id as u32, x)
    }

    /// Records a rank-0 node computed by an elementwise unary op from the rank-0 node `a`: the
    /// scalar graph's fast path, which stores no tensor. Gives `op` back, recording nothing, when
    /// `a` is not a rank-0 node of this tape (the caller then takes the general path, which
    /// reports any error).
    #[inline(always)]
    pub(crate) fn record_scalar_unary(
        &self,
        op: Op<E>,
        a: Var<'_, E>,
        f: impl FnOnce(E) -> E,
    ) -> Option<Var<'_, E>> {
        if self.replayed.get() {
            return None;
        }
        let mut store = self.store.borrow_mut();
        let na = store.nodes.get(a.index()).filter(|n| n.rank0())?;
        let requires_grad = na.requires_grad & self.recording.get();
        let ids = [a.index() as u32, 0];
        let wants = [na.requires_grad, false];
        Some(self.append_scalar(
            &mut store,
            op,
            ids,
            1,
            (requires_grad, wants),
            [a.x(), E::ZERO],
            |[x, _]| f(x),
        ))
    }

    /// Records a rank-0 node computed by an elementwise binary op from the rank-0 nodes `a` and
    /// `b`: the scalar graph's fast path. Gives `op` back, recording nothing, when either is not
    /// a rank-0 node of this tape, a finite-check error is pending, or the tape was replayed.
    #[inline(always)]
    pub(crate) fn record_scalar_binary(
        &self,
        op: Op<E>,
        a: Var<'_, E>,
        b: Var<'_, E>,
        f: impl FnOnce(E, E) -> E,
    ) -> Option<Var<'_, E>> {
        if self.pending.get().is_some() || self.replayed.get() {
            return None;
        }
        let mut store = self.store.borrow_mut();
        let nodes = &store.nodes;
        let (na, nb) = (nodes.get(a.index())?, nodes.get(b.index())?);
        if !(na.rank0() & nb.rank0()) {
            return None;
        }
        let requires_grad = (na.requires_grad | nb.requires_grad) & self.recording.get();
        let ids = [a.index() as u32, b.index() as u32];
        let wants = [na.requires_grad, nb.requires_grad];
        Some(self.append_scalar(
            &mut store,
            op,
            ids,
            2,
            (requires_grad, wants),
            [a.x(), b.x()],
            |[x, y]| f(x, y),
        ))
    }

    /// Appends a rank-0 node (no tensor) to the list, its value computed by `f` from its
    /// inputs' values `inputs`, taken from their vars rather than from their records.
    ///
    /// No value is live across a call that returns to the hot path (every xmm register is lost
    /// across a call): the value is computed first (an op's own math may call into libm); no
    /// call comes between the room check and the push, so the push's own growth check folds
    /// away; a full list grows in a cold function that takes the value and gives it back in
    /// the var; and the finite check reads the value back from the record. A chain of scalar
    /// ops thus keeps its values in registers from one op to the next and writes each record
    /// off its critical path.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn append_scalar(
        &self,
        store: &mut Store<E>,
        op: Op<E>,
        ids: [u32; 2],
        arity: u8,
        (requires_grad, wants): (bool, [bool; 2]),
        inputs: [E; 2],
        f: impl FnOnce([E; 2]) -> E,
    ) -> Var<'_, E> {
        let x = f(inputs);
        let id = store.nodes.len();
        let run = Run::of(id, (true, requires_grad), arity, ids, wants);
        // The list never has room past `NODE_LIMIT` ([`grow_nodes`]): a spare element's id
        // fits its 32 bits.
        let Some(free) = store.nodes.spare_capacity_mut().first_mut() else {
            // The value is read back from the record: no var crosses the call (a var returned
            // from a call comes back packed in integer registers, and merging that with this
            // path's var would move the chain's values through memory here too).
            self.append_scalar_growing(store, op, (ids, arity, run), requires_grad, x);
            let x = store.nodes.get(id).map_or(E::ZERO, |n| n.x);
            return Var::new(self, id as u32, x);
        };
        free.write(Node::scalar(op, ids, arity, requires_grad, x, run));
        // SAFETY: the element at `id`, the first spare one (so `id < capacity`), was just
        // written. (`Vec::push` would do the same, behind a growth check whose call, even
        // untaken, makes the compiler keep the chain's values in memory.)
        unsafe { store.nodes.set_len(id + 1) };
        let x = if self.watched.get() {
            self.watch_scalar(store, id)
        } else {
            x
        };
        Var::new(self, id as u32, x)
    }

    /// [`Tape::append_scalar`] when the list is full: grows it and appends the node.
    #[cold]
    #[inline(never)]
    fn append_scalar_growing(
        &self,
        store: &mut Store<E>,
        op: Op<E>,
        (ids, arity, run): ([u32; 2], u8, Run),
        requires_grad: bool,
        x: E,
    ) {
        let id = store.nodes.len();
        grow_nodes(&mut store.nodes);
        store
            .nodes
            .push(Node::scalar(op, ids, arity, requires_grad, x, run));
        if self.watched.get() {
            self.watch_scalar(store, id);
        }
    }

    /// The finite check and the profiler's clock for scalar node `id`, off the fast path.
    /// Returns the node's value, read back from its record.
    #[cold]
    #[inline(never)]
    fn watch_scalar(&self, store: &Store<E>, id: usize) -> E {
        let value = store.nodes.get(id).map_or(E::ZERO, |n| n.x);
        if self.check_finite.get() && !value.is_finite() && self.pending.get().is_none() {
            self.pending.set(Some(id));
        }
        if self.profiling.get() {
            self.prof.borrow_mut().forward_node(id);
        }
        value
    }

    /// Appends an index list to the arena and returns where it sits.
    pub(crate) fn push_indices(&self, list: &[usize]) -> (u32, u32) {
        let arena = &mut self.store.borrow_mut().indices;
        // The list's end is a 32-bit number, so its start and length are too.
        let end = index32(arena.len() + list.len(), u32::MAX, "op index");
        arena.extend_from_slice(list);
        let len = list.len() as u32;
        (end - len, len)
    }

    /// Returns the pending finite-check error, if any.
    #[inline]
    pub(crate) fn take_pending(&self) -> Result<()> {
        if self.pending.get().is_none() {
            return Ok(());
        }
        self.report_pending()
    }

    #[cold]
    fn report_pending(&self) -> Result<()> {
        if let Some(id) = self.pending.take()
            && self.check_finite.get()
        {
            let store = self.store.borrow();
            return crate::anomaly::check(&store, id, &store.value(id), "forward", None);
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
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let (a, b) = (tape.var(Tensor::scalar(2.0)), tape.var(Tensor::scalar(-3.0)));
    /// let y = (a * b + a).tanh(); // micrograd's example
    /// let grads = tape.backward(y)?;
    /// let t = (2.0f64 * -3.0 + 2.0).tanh();
    /// assert!((grads[a].item()? - (1.0 - t * t) * (-3.0 + 1.0)).abs() < 1e-12);
    /// assert!((grads[b].item()? - (1.0 - t * t) * 2.0).abs() < 1e-12);
    /// assert!(tape.backward(a + b).is_ok() && tape.backward(tape.var(Tensor::zeros(&[2]))).is_err());
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn backward(&self, loss: Var<'_, E>) -> Result<Gradients<'_, E>> {
        loss.check_tape(self, "backward")?;
        self.take_pending()?;
        let store = self.store.borrow();
        let nodes = &store.nodes[..];
        let root = loss.index();
        if !nodes[root].single {
            return Err(AutodiffError::NonScalarLoss {
                shape: store.shape(root).to_vec(),
            });
        }
        let (mut tensors, mut scalars) = self.spare.borrow_mut().take().unwrap_or_default();
        tensors.clear();
        tensors.resize_with(self.slots.get() as usize, || None);
        scalars.clear();
        scalars.resize(root + 1, None);
        if nodes[root].requires_grad {
            scalars[root] = Some(E::ONE);
        }
        let check = self.check_finite.get();
        let profiling = self.profiling.get();
        let mut clock = profiling.then(|| crate::profile::BackwardClock::start(root + 1));
        // Without the finite check or the profiler, runs of scalar nodes take `scalar_run`.
        let fast = !check && clock.is_none();
        let mut i = root + 1;
        while i > 0 {
            i -= 1;
            if fast && nodes[i].single {
                match scalar_run(nodes, i, &mut scalars) {
                    Some(stop) => i = stop,
                    None => break,
                }
            }
            if let Some(c) = clock.as_mut() {
                c.tick(i);
            }
            let node = &nodes[i];
            if !node.requires_grad {
                continue;
            }
            if node.single {
                let Some(g) = scalars[i] else {
                    continue;
                };
                let (before, _) = scalars.split_at_mut(i);
                if scalar_backward(nodes, node, g, before) {
                    if check {
                        check_scalar_inputs(&store, i, before)?;
                    }
                    continue;
                }
            }
            let inputs = node.inputs(&store.links);
            if node.single {
                let g = scalars[i].unwrap_or(E::ZERO);
                if inputs.is_empty() {
                    tensors[node.slot as usize] = Some(Tensor::full(store.shape(i), g));
                    continue;
                }
                let (before, _) = scalars.split_at_mut(i);
                let grad = Tensor::full(store.shape(i), g);
                generic_backward(&store, i, inputs, &grad, &mut tensors, before)?;
            } else {
                let (before, rest) = tensors.split_at_mut(node.slot as usize);
                let Some(grad) = rest[0].as_ref() else {
                    continue;
                };
                if inputs.is_empty() {
                    continue;
                }
                let (sbefore, _) = scalars.split_at_mut(i);
                generic_backward(&store, i, inputs, grad, before, sbefore)?;
            }
            if check {
                for &input in inputs {
                    let j = input as usize;
                    if nodes[j].single {
                        if let Some(g) = scalars[j]
                            && !g.is_finite()
                        {
                            let t = Tensor::full(store.shape(j), g);
                            crate::anomaly::check(&store, i, &t, "backward", Some(j))?;
                        }
                    } else if let Some(Some(g)) = tensors.get(nodes[j].slot as usize) {
                        crate::anomaly::check(&store, i, g, "backward", Some(j))?;
                    }
                }
            }
        }
        if let Some(c) = clock {
            self.prof.borrow_mut().set_backward(c.finish());
        }
        Ok(Gradients::new(self, nodes.len(), tensors, scalars))
    }
}

/// The backward of a one-element node whose op is elementwise with one or two inputs (which
/// hold one element too): adds the op's scalar derivatives into the inputs' scalar gradients.
/// Returns false, doing nothing, for any other node. This is the scalar graph's hot loop.
#[inline(always)]
fn scalar_backward<E: Float>(
    nodes: &[Node<E>],
    node: &Node<E>,
    g: E,
    scalars: &mut [Option<E>],
) -> bool {
    // Branch-free accumulation: -0 + d is exactly d (for d = +-0 too), so the first
    // contribution and later ones take one path (a branch here alternates and mispredicts).
    let add = |acc: &mut Option<E>, d: E| *acc = Some(acc.unwrap_or(-E::ZERO) + d);
    let two = node.arity == 2;
    if !(node.arity == 1 || two) {
        return false;
    }
    let [j, k] = node.ids.map(|v| v as usize);
    // A unary op's derivative ignores `b`; it gets the input again, to keep one call site.
    let (Some(a), Some(b)) = (nodes.get(j), nodes.get(if two { k } else { j })) else {
        return false;
    };
    let Some([da, db]) = node.op.scalar_backward(g, a.x, b.x, node.x) else {
        return false;
    };
    if a.requires_grad
        && let Some(acc) = scalars.get_mut(j)
    {
        add(acc, da);
    }
    if two
        && b.requires_grad
        && let Some(acc) = scalars.get_mut(k)
    {
        add(acc, db);
    }
    true
}

/// The backward of a run of scalar nodes, from node `start` down: each one-element node with
/// an elementwise op of one or two inputs adds its derivatives into its inputs' gradients, and
/// nodes without a gradient are passed over. Returns the first node it cannot take (a leaf, a
/// tensor node, any other op), or `None` when it went through node 0.
///
/// The same arithmetic in the same order as [`scalar_backward`] node by node, except that a
/// contribution to the node just below is kept in a register (`carry`) rather than written and
/// read back: on a chain, that store and load were the longest part of each step.
///
/// At about six instructions a cycle, the loop is bound by its taken branches (a core takes
/// one or two a cycle) more than by its instructions. The cases a chain does not take (a node
/// reached other than by the carry alone, a node without a backward here, both inputs one
/// node, an input's first contribution) are marked cold, so that the compiler lays the chain's
/// path out straight: 3.0 taken branches per node against 8.3 unmarked (callgrind's
/// `--collect-jumps` on W1), which an unrelated change had moved it away from.
#[inline(never)]
fn scalar_run<E: Float>(
    nodes: &[Node<E>],
    start: usize,
    scalars: &mut [Option<E>],
) -> Option<usize> {
    // `-0 + d` is exactly `d`; an input's first contribution is the rare case (once per input).
    let add = |acc: Option<E>, d: E| match acc {
        Some(s) => Some(s + d),
        None => {
            cold();
            Some(-E::ZERO + d)
        }
    };
    // Both cut to `start + 1` once: the loop's own indexing then needs no bounds checks.
    let n = start.checked_add(1)?;
    let (Some(nodes), Some(scalars)) = (nodes.get(..n), scalars.get_mut(..n)) else {
        return Some(start);
    };
    // A contribution to node `i`'s gradient not yet added into `scalars[i]`.
    let mut carry: Option<E> = None;
    for i in (0..n).rev() {
        let node = &nodes[i];
        // `-0 + c` is exactly `c`: a slot reached only by the carry (every node of a chain)
        // takes it without an addition on the chain's critical path.
        let g = match (scalars[i], carry.take()) {
            (None, Some(c)) => Some(c),
            (Some(s), Some(c)) => {
                cold();
                add(Some(s), c)
            }
            (s, None) => {
                cold();
                s
            }
        };
        scalars[i] = g;
        let run = node.run;
        // One test for the common case: a node of one or two inputs that a gradient reached.
        let (Some(g), true) = (g, run.has(Run::STEP)) else {
            cold();
            if run == Run::STOP {
                return Some(i);
            }
            continue;
        };
        // Inputs precede their node: `before` holds them, and `slots` their gradients.
        let (before, _) = nodes.split_at(i);
        let (slots, _) = scalars.split_at_mut(i);
        let [j, k] = node.ids.map(|v| v as usize);
        let Some(a) = before.get(j) else {
            return Some(i);
        };
        if !run.has(Run::BINARY) {
            // A unary op's derivative ignores `b`; it gets the input again.
            let Some([da, _]) = node.op.scalar_backward(g, a.x, a.x, node.x) else {
                return Some(i);
            };
            if run.has(Run::CARRY_A) {
                carry = Some(da);
            } else if run.has(Run::A)
                && let Some(acc) = slots.get_mut(j)
            {
                *acc = add(*acc, da);
            }
            continue;
        }
        let Some(b) = before.get(k) else {
            return Some(i);
        };
        let Some([da, db]) = node.op.scalar_backward(g, a.x, b.x, node.x) else {
            return Some(i);
        };
        if run.has(Run::SAME) {
            cold();
            if run.has(Run::A)
                && let Some(acc) = slots.get_mut(j)
            {
                *acc = add(add(*acc, da), db);
            }
            continue;
        }
        if run.has(Run::CARRY_A) {
            carry = Some(da);
        } else if run.has(Run::A)
            && let Some(acc) = slots.get_mut(j)
        {
            *acc = add(*acc, da);
        }
        if run.has(Run::CARRY_B) {
            carry = Some(db);
        } else if run.has(Run::B)
            && let Some(acc) = slots.get_mut(k)
        {
            *acc = add(*acc, db);
        }
    }
    None
}

/// Marks the path that calls it as rarely taken, so that the compiler lays the other one out
/// straight (`std::hint::cold_path`, which is newer than this crate's minimum Rust).
#[cold]
#[inline(never)]
fn cold() {}

/// The finite check of the gradients a scalar node's backward just added into its inputs.
#[cold]
fn check_scalar_inputs<E: Float>(store: &Store<E>, i: usize, scalars: &[Option<E>]) -> Result<()> {
    for &input in store.inputs(i) {
        let j = input as usize;
        if let Some(Some(g)) = scalars.get(j)
            && !g.is_finite()
        {
            let t = Tensor::full(store.shape(j), *g);
            crate::anomaly::check(store, i, &t, "backward", Some(j))?;
        }
    }
    Ok(())
}

/// The backward of node `i` through its op's own backward, with `grad` its upstream gradient.
/// Rank-0 inputs and outputs, which store no tensor, get one built here for the op to read.
pub(crate) fn generic_backward<E: Float>(
    store: &Store<E>,
    i: usize,
    inputs: &[u32],
    grad: &Tensor<E>,
    tensors: &mut [Option<Tensor<E>>],
    scalars: &mut [Option<E>],
) -> Result<()> {
    let mut run = |rank0: &[(u32, Tensor<E>)]| {
        let mut ctx = BackwardCtx::new(store, rank0, i, inputs, grad, tensors, scalars);
        store.nodes[i].op.backward(&mut ctx)?;
        ctx.finish();
        Ok(())
    };
    let me = i as u32;
    let ids = || inputs.iter().copied().chain([me]);
    if !ids().any(|j| store.nodes[j as usize].rank0()) {
        // The common case of tensor ops: nothing to build, and no list to drop.
        return run(&[]);
    }
    let mut rank0: SmallVec<[(u32, Tensor<E>); 3]> = SmallVec::new();
    for j in ids() {
        let node = &store.nodes[j as usize];
        if node.rank0() {
            rank0.push((j, Tensor::scalar(node.x)));
        }
    }
    run(&rank0)
}

#[cfg(test)]
mod tests {
    use super::{NODE_LIMIT, Node, SHARED, VALUE_LIMIT, index32};

    #[test]
    fn positions_past_32_bits_panic_rather_than_wrap() {
        // The last id a node can have, and the first it cannot.
        assert_eq!(index32(0, NODE_LIMIT, "node"), 0);
        assert_eq!(
            index32(u32::MAX as usize - 1, NODE_LIMIT, "node"),
            u32::MAX - 1
        );
        let past = std::panic::catch_unwind(|| index32(u32::MAX as usize, NODE_LIMIT, "node"));
        let message = *past
            .expect_err("u32::MAX is \"none\"")
            .downcast::<String>()
            .unwrap();
        assert!(message.contains("node number 4294967295"), "{message}");
        assert!(message.contains("clear the tape"), "{message}");
        // Far past: no truncation to a small id (2^32 + 5 would wrap to 5).
        assert!(
            std::panic::catch_unwind(|| index32((1usize << 32) + 5, u32::MAX, "op index")).is_err()
        );
        assert!(std::panic::catch_unwind(|| index32(usize::MAX, u32::MAX, "op index")).is_err());
        // A value's index shares its 32 bits with the SHARED flag.
        assert_eq!(
            index32(SHARED as usize - 1, VALUE_LIMIT, "tensor value"),
            SHARED - 1
        );
        assert!(
            std::panic::catch_unwind(|| index32(SHARED as usize, VALUE_LIMIT, "shared tensor"))
                .is_err()
        );
    }

    #[test]
    fn a_node_is_a_small_plain_record() {
        // The scalar graph's cost is mostly these bytes, written once and read once.
        assert_eq!(size_of::<Node<f32>>(), 40);
        assert_eq!(size_of::<Node<f64>>(), 56);
        assert!(
            !std::mem::needs_drop::<Node<f64>>(),
            "clear frees nothing node by node"
        );
    }
}
