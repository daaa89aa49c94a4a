//! `Var`: a `Copy` handle to one node of a tape, and the recording plumbing every op uses.

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;
use tapegrad_tensor::{Float, Shape, Tensor};

use crate::error::{AutodiffError, Result};
use crate::ops::Op;
use crate::tape::Tape;

/// A handle to one node of a [`Tape`]: its forward value and its place in the graph.
///
/// `Var` is `Copy`: ops take vars by value and record a new node. Combining vars of two tapes
/// is an error ([`AutodiffError::ForeignVar`]).
#[derive(Clone, Copy)]
pub struct Var<'t, E: Float = f32> {
    tape: &'t Tape<E>,
    id: u32,
    /// The value's first element when the var was made: the scalar path computes from it
    /// rather than from the record, so a chain of scalar ops keeps its values in registers.
    /// Only [`Tape::replay`] changes a recorded value under a live var; after it the scalar
    /// path reads the records instead (see `Tape::replayed`).
    x: E,
}

impl<E: Float> fmt::Debug for Var<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = self.tape.store();
        write!(
            f,
            "Var(#{} {} {:?})",
            self.id,
            store.op_name(self.index()),
            store.shape(self.index())
        )
    }
}

impl<'t, E: Float> Var<'t, E> {
    /// The var of node `id`, whose value's first element is `x`.
    #[inline(always)]
    pub(crate) fn new(tape: &'t Tape<E>, id: u32, x: E) -> Self {
        Var { tape, id, x }
    }

    /// The var of node `id`, reading its value's first element from the record. Inlined: a var
    /// returned from a call comes back packed in integer registers, and a var merged with one
    /// would move a scalar chain's values through memory.
    #[inline(always)]
    pub(crate) fn at(tape: &'t Tape<E>, id: u32) -> Self {
        let x = tape.store().nodes[id as usize].x;
        Var { tape, id, x }
    }

    /// The value's first element when the var was made (see the field's comment).
    #[inline(always)]
    pub(crate) fn x(&self) -> E {
        self.x
    }

    /// The node's id: its position on the tape.
    #[inline]
    pub fn index(&self) -> usize {
        self.id as usize
    }

    /// The tape this var belongs to.
    #[inline]
    pub fn tape(&self) -> &'t Tape<E> {
        self.tape
    }

    /// The forward value (a copy; see [`Var::with_value`] to borrow it).
    pub fn value(&self) -> Tensor<E> {
        self.tape.store().value(self.index()).into_owned()
    }

    /// Calls `f` with a reference to the forward value, without copying it.
    pub fn with_value<R>(&self, f: impl FnOnce(&Tensor<E>) -> R) -> R {
        f(&self.tape.store().value(self.index()))
    }

    /// The forward value's shape.
    pub fn shape(&self) -> Shape {
        Shape::from_slice(self.tape.store().shape(self.index()))
    }

    /// The value's number of axes (the length of [`Var::shape`], without copying the shape).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// assert_eq!(tape.var(Tensor::zeros(&[2, 3])).rank(), 2);
    /// ```
    pub fn rank(&self) -> usize {
        self.tape.store().shape(self.index()).len()
    }

    /// The length of one axis of the value; `None` past its last axis.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// let x = tape.var(Tensor::zeros(&[2, 3]));
    /// assert_eq!((x.dim(0), x.dim(1), x.dim(2)), (Some(2), Some(3), None));
    /// ```
    pub fn dim(&self, axis: usize) -> Option<usize> {
        self.tape.store().shape(self.index()).get(axis).copied()
    }

    /// The single element of a one-element value.
    ///
    /// # Errors
    ///
    /// When the value does not hold exactly one element.
    pub fn item(&self) -> Result<E> {
        let store = self.tape.store();
        let node = &store.nodes[self.index()];
        if node.single {
            return Ok(node.x);
        }
        Ok(store.value(self.index()).item()?)
    }

    /// Names the node for traces and drawings, and returns the same var.
    pub fn named(self, label: &str) -> Self {
        self.named_shared(Arc::from(label))
    }

    /// Names the node with a shared name (no allocation: the count of the `Arc` goes up).
    #[inline]
    pub fn named_shared(self, label: Arc<str>) -> Self {
        self.label_with(|_| false, || label)
    }

    /// Names the node with a shared name, cloning the `Arc` only when the tape does not hold
    /// it already: a step that names its nodes in the same order as the last step that named
    /// any takes each name back from that step (the tape keeps those names through
    /// [`Tape::clear`], until a later step names nodes otherwise or the tape is dropped), so
    /// no count goes up or down. Networks name their parameters this way every step.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let name: Arc<str> = Arc::from("w");
    /// let mut tape = Tape::<f32>::new();
    /// for _ in 0..3 {
    ///     tape.clear();
    ///     let w = tape.var(Tensor::scalar(1.0)).named_arc(&name);
    ///     assert_eq!(w.label().as_deref(), Some("w"));
    ///     assert_eq!(Arc::strong_count(&name), 2); // the tape's one, taken back each step
    ///     tape.clear(); // a second clear, of a tape that named nothing, keeps it too
    /// }
    /// drop(tape);
    /// assert_eq!(Arc::strong_count(&name), 1);
    /// ```
    #[inline]
    pub fn named_arc(self, label: &Arc<str>) -> Self {
        self.label_with(|kept| Arc::ptr_eq(kept, label), || Arc::clone(label))
    }

    /// Names the node at the tape's next label position: the name kept there from the last
    /// step when `same` says it is this one, else `label()`.
    #[inline(always)]
    fn label_with(
        self,
        same: impl FnOnce(&Arc<str>) -> bool,
        label: impl FnOnce() -> Arc<str>,
    ) -> Self {
        let mut store = self.tape.store.borrow_mut();
        let store = &mut *store;
        let (k, id) = (store.labels_used, self.id);
        match store.labels.get_mut(k) {
            Some((at, kept)) if same(kept) => *at = id,
            Some(slot) => *slot = (id, label()),
            None => store.labels.push((id, label())),
        }
        store.labels_used = k + 1;
        self
    }

    /// The node's name, if it has one.
    pub fn label(&self) -> Option<String> {
        self.tape.store().label(self.index()).map(str::to_owned)
    }

    /// Whether a gradient can flow to this node.
    pub fn requires_grad(&self) -> bool {
        self.tape.store().nodes[self.index()].requires_grad
    }

    /// The op that computed this node (`"leaf"`, `"constant"`, `"sigmoid"`, ...).
    pub fn op_name(&self) -> String {
        self.tape.store().op_name(self.index()).to_string()
    }

    pub(crate) fn check_tape(&self, tape: &Tape<E>, op: &'static str) -> Result<()> {
        if std::ptr::eq(self.tape, tape) {
            Ok(())
        } else {
            Err(AutodiffError::ForeignVar {
                op,
                id: self.index(),
            })
        }
    }

    /// Records a unary op whose forward cannot fail.
    #[inline(never)]
    pub(crate) fn record_unary(self, op: Op<E>, f: impl FnOnce(&Tensor<E>) -> Tensor<E>) -> Self {
        let (value, requires_grad) = {
            let store = self.tape.store();
            let rg = store.nodes[self.index()].requires_grad && self.tape.is_recording();
            (f(&store.value(self.index())), rg)
        };
        self.tape
            .push_node(op, &[self.id], value, None, requires_grad)
    }

    /// Records an elementwise unary op: `scalar` computes one element, `tensor` the whole
    /// value. A rank-0 input takes the scalar graph's fast path (no tensor op runs).
    #[inline(always)]
    pub(crate) fn record_elementwise(
        self,
        op: Op<E>,
        scalar: impl FnOnce(E) -> E,
        tensor: impl FnOnce(&Tensor<E>) -> Tensor<E>,
    ) -> Self {
        if let Some(v) = self.tape.record_scalar_unary(op, self, scalar) {
            return v;
        }
        // A fresh copy for the call (`rebuilt`, not a move of `op`): the scalar path's `op`
        // then never has its address taken, so libm calls on that path cannot make the
        // compiler read it back from memory.
        let id = Self::record_unary_id(self.tape, self.id, op.rebuilt(), tensor);
        Var::at(self.tape, id)
    }

    /// [`Var::record_unary`] for the elementwise ops' general path, taking and giving ids:
    /// no `Var` crosses the call, so the scalar path's vars stay in registers.
    #[inline(never)]
    fn record_unary_id(
        tape: &'t Tape<E>,
        id: u32,
        op: Op<E>,
        f: impl FnOnce(&Tensor<E>) -> Tensor<E>,
    ) -> u32 {
        Var::at(tape, id).record_unary(op, f).id
    }

    /// The scalar path of an elementwise binary op: `Some` new rank-0 node when both vars are
    /// rank-0 nodes of one tape (see [`Tape::record_scalar_binary`]), `None` for the general
    /// path.
    #[inline(always)]
    pub(crate) fn scalar_binary(
        self,
        other: Var<'t, E>,
        op: Op<E>,
        scalar: impl FnOnce(E, E) -> E,
    ) -> Option<Self> {
        if !std::ptr::eq(self.tape, other.tape) {
            return None;
        }
        self.tape.record_scalar_binary(op, self, other, scalar)
    }

    /// Records an elementwise binary op with broadcasting: `scalar` computes one element,
    /// `tensor` the whole value. Two rank-0 inputs take the scalar graph's fast path.
    #[inline(always)]
    pub(crate) fn record_elementwise_binary(
        self,
        other: Var<'_, E>,
        name: &'static str,
        op: Op<E>,
        scalar: impl FnOnce(E, E) -> E,
        tensor: impl FnOnce(&Tensor<E>, &Tensor<E>) -> tapegrad_tensor::Result<Tensor<E>>,
    ) -> Result<Self> {
        if std::ptr::eq(self.tape, other.tape)
            && let Some(v) = self.tape.record_scalar_binary(op, self, other, scalar)
        {
            return Ok(v);
        }
        let id = Self::record_binary_id(self.tape, self.id, other.tape, other.id, name, |a, b| {
            Ok((op, tensor(a, b)?, None))
        })?;
        Ok(Var::at(self.tape, id))
    }

    /// [`Var::record_binary`] for the elementwise ops' general path, taking and giving ids:
    /// no `Var` crosses the call, so the scalar path's vars stay in registers.
    #[inline(never)]
    fn record_binary_id(
        tape: &'t Tape<E>,
        a: u32,
        other: &Tape<E>,
        b: u32,
        name: &'static str,
        f: impl FnOnce(&Tensor<E>, &Tensor<E>) -> Result<(Op<E>, Tensor<E>, Option<Tensor<E>>)>,
    ) -> Result<u32> {
        let var = Var::at(tape, a).record_binary(Var::at(other, b), name, f)?;
        Ok(var.id)
    }

    /// Records a unary op whose forward can fail or saves a tensor for the backward.
    pub(crate) fn try_record_unary(
        self,
        op: impl FnOnce(&Tensor<E>) -> Result<(Op<E>, Tensor<E>, Option<Tensor<E>>)>,
    ) -> Result<Self> {
        self.tape.take_pending()?;
        let (op, value, saved, requires_grad) = {
            let store = self.tape.store();
            let (op, value, saved) = op(&store.value(self.index()))?;
            let rg = store.nodes[self.index()].requires_grad && self.tape.is_recording();
            (op, value, saved, rg)
        };
        let var = self
            .tape
            .push_node(op, &[self.id], value, saved, requires_grad);
        self.tape.take_pending()?;
        Ok(var)
    }

    /// Records a binary op: checks both vars share a tape, computes the value, appends a node.
    #[inline(never)]
    pub(crate) fn record_binary(
        self,
        other: Var<'_, E>,
        name: &'static str,
        f: impl FnOnce(&Tensor<E>, &Tensor<E>) -> Result<(Op<E>, Tensor<E>, Option<Tensor<E>>)>,
    ) -> Result<Self> {
        other.check_tape(self.tape, name)?;
        self.tape.take_pending()?;
        let (op, value, saved, requires_grad) = {
            let store = self.tape.store();
            let (a, b) = (self.index(), other.index());
            let (op, value, saved) = f(&store.value(a), &store.value(b))?;
            let rg = (store.nodes[a].requires_grad || store.nodes[b].requires_grad)
                && self.tape.is_recording();
            (op, value, saved, rg)
        };
        let inputs = [self.id, other.id];
        let var = self
            .tape
            .push_node(op, &inputs, value, saved, requires_grad);
        self.tape.take_pending()?;
        Ok(var)
    }

    /// Records an op over any number of vars (all of `vars`' tape).
    pub(crate) fn record_nary(
        vars: &[Var<'t, E>],
        name: &'static str,
        f: impl FnOnce(&[&Tensor<E>]) -> Result<(Op<E>, Tensor<E>, Option<Tensor<E>>)>,
    ) -> Result<Self> {
        let first = vars.first().ok_or_else(|| {
            AutodiffError::Tensor(tapegrad_tensor::TensorError::Invalid {
                op: name,
                reason: "no vars given".into(),
            })
        })?;
        let tape = first.tape;
        for v in vars {
            v.check_tape(tape, name)?;
        }
        tape.take_pending()?;
        let (op, value, saved, requires_grad) = {
            let store = tape.store();
            // The stored values by reference; only when an input is rank 0 (it stores no
            // tensor) are the values built. Pushed one by one: collecting into an
            // `Option<SmallVec>` goes through SmallVec's generic `extend`, a hundred
            // instructions for three inputs.
            let mut stored: SmallVec<[&Tensor<E>; 4]> = SmallVec::new();
            for v in vars {
                match store.tensor(v.index()) {
                    Some(t) => stored.push(t),
                    None => break,
                }
            }
            let (op, value, saved) = if stored.len() == vars.len() {
                f(&stored)?
            } else {
                let owned: SmallVec<[std::borrow::Cow<'_, Tensor<E>>; 4]> =
                    vars.iter().map(|v| store.value(v.index())).collect();
                let values: SmallVec<[&Tensor<E>; 4]> = owned.iter().map(|c| &**c).collect();
                f(&values)?
            };
            let rg =
                vars.iter().any(|v| store.nodes[v.index()].requires_grad) && tape.is_recording();
            (op, value, saved, rg)
        };
        let var = if let [a, b, c] = vars {
            tape.push_node(op, &[a.id, b.id, c.id], value, saved, requires_grad)
        } else {
            let inputs: SmallVec<[u32; 4]> = vars.iter().map(|v| v.id).collect();
            tape.push_node(op, &inputs, value, saved, requires_grad)
        };
        tape.take_pending()?;
        Ok(var)
    }

    /// A copy of this node's value as a constant: no gradient flows back through it.
    pub fn detach(self) -> Self {
        let value = self.value();
        self.tape.push_node(Op::Detach, &[], value, None, false)
    }
}
