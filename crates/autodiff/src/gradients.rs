//! `Gradients`: the result of a backward pass, indexed by `Var`.

use std::cell::OnceCell;
use std::ops::Index;

use tapegrad_tensor::{Float, Tensor};

use crate::error::{AutodiffError, Result};
use crate::tape::Tape;
use crate::var::Var;

/// The gradients of one loss with respect to the nodes of one tape.
///
/// `grads[var]` is the gradient with `var`'s shape. A var with no path to the loss gets zeros,
/// and [`Gradients::reaches`] tells the two cases apart: there is never a silent `None`.
///
/// `Gradients` borrows its tape, so the tape cannot be cleared while they are alive; when they
/// are dropped their buffers go back to the tape for the next backward pass.
pub struct Gradients<'t, E: Float = f32> {
    tape: &'t Tape<E>,
    /// The gradient tensors by slot (see `Node::slot`): every node that requires a gradient and
    /// holds more than one element, and every leaf; `None` where no path from the loss arrived.
    tensors: Vec<Option<Tensor<E>>>,
    /// The gradients of one-element nodes by node id, up to the loss.
    scalars: Vec<Option<E>>,
    /// The number of nodes the tape held at backward time.
    nodes: usize,
    /// Tensors made only when looked up, by node id: the gradients of one-element op nodes, and
    /// zeros for nodes the loss does not reach (a training loop looks up neither, so backward
    /// does no per-node work for them).
    lazy: OnceCell<Vec<OnceCell<Tensor<E>>>>,
}

impl<'t, E: Float> Gradients<'t, E> {
    pub(crate) fn new(
        tape: &'t Tape<E>,
        nodes: usize,
        tensors: Vec<Option<Tensor<E>>>,
        scalars: Vec<Option<E>>,
    ) -> Self {
        Gradients {
            tape,
            tensors,
            scalars,
            nodes,
            lazy: OnceCell::new(),
        }
    }

    fn check(&self, var: Var<'_, E>, op: &'static str) -> Result<usize> {
        let i = var.index();
        if !std::ptr::eq(var.tape(), self.tape) {
            return Err(AutodiffError::ForeignVar { op, id: i });
        }
        if i >= self.nodes {
            return Err(AutodiffError::VarAfterBackward {
                op,
                id: i,
                last: self.nodes - 1,
            });
        }
        Ok(i)
    }

    /// The gradient of `var` (zeros when it does not reach the loss).
    ///
    /// # Errors
    ///
    /// [`AutodiffError::ForeignVar`] when `var` belongs to another tape, and
    /// [`AutodiffError::VarAfterBackward`] when it was recorded after this backward pass.
    pub fn get(&self, var: Var<'_, E>) -> Result<&Tensor<E>> {
        let i = self.check(var, "gradients lookup")?;
        Ok(self.tensor(i))
    }

    /// Moves the gradient of `var` out without copying it: `None` when no path from the loss
    /// reaches `var` (or when it was taken before). This is how a training step keeps its
    /// parameters' gradients after the tape is cleared.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let w = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// let unused = tape.var(Tensor::zeros(&[3]));
    /// let mut grads = tape.backward((w * w).sum())?;
    /// assert_eq!(grads.take(w)?.map(|g| g.to_vec()), Some(vec![2.0, 4.0]));
    /// assert!(grads.take(w)?.is_none()); // taken already
    /// assert!(grads.take(unused)?.is_none()); // the loss does not depend on it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Gradients::get`].
    pub fn take(&mut self, var: Var<'_, E>) -> Result<Option<Tensor<E>>> {
        let i = self.check(var, "gradients take")?;
        let slot = self.tape.store().nodes[i].slot as usize;
        // A one-element node's gradient is a number (and, for a leaf, also a tensor slot).
        let scalar = self.scalars.get_mut(i).and_then(Option::take);
        if let Some(t) = self.tensors.get_mut(slot).and_then(Option::take) {
            return Ok(Some(t));
        }
        Ok(scalar.map(|g| Tensor::full(self.tape.store().shape(i), g)))
    }

    /// The gradient tensor of node `i` (< `self.nodes`), zeros when none arrived.
    fn tensor(&self, i: usize) -> &Tensor<E> {
        let slot = self.tape.store().nodes[i].slot as usize;
        if let Some(Some(g)) = self.tensors.get(slot) {
            return g;
        }
        let lazy = self
            .lazy
            .get_or_init(|| (0..self.nodes).map(|_| OnceCell::new()).collect());
        lazy[i].get_or_init(|| {
            let store = self.tape.store();
            let shape = store.shape(i);
            match self.scalar(i) {
                Some(g) => Tensor::full(shape, g),
                None => Tensor::zeros(shape),
            }
        })
    }

    /// The gradient of one-element node `i`, if one arrived.
    fn scalar(&self, i: usize) -> Option<E> {
        self.scalars.get(i).copied().flatten()
    }

    /// Whether a path leads from `var` to the loss (false for constants and for vars the loss
    /// does not depend on, and for vars of another tape).
    pub fn reaches(&self, var: Var<'_, E>) -> bool {
        self.check(var, "reaches").is_ok() && self.reached(var.index())
    }

    fn reached(&self, i: usize) -> bool {
        let store = self.tape.store();
        let node = &store.nodes[i];
        if node.single {
            self.scalar(i).is_some()
        } else {
            matches!(self.tensors.get(node.slot as usize), Some(Some(_)))
        }
    }

    /// The gradient of node `id` if one reached it (for traces and drawings).
    pub(crate) fn by_index(&self, id: usize) -> Option<&Tensor<E>> {
        (id < self.nodes && self.reached(id)).then(|| self.tensor(id))
    }
}

impl<E: Float> Drop for Gradients<'_, E> {
    /// Hands the buffers back to the tape (the tensors go to the buffer pool).
    fn drop(&mut self) {
        let mut tensors = std::mem::take(&mut self.tensors);
        tensors.clear();
        let scalars = std::mem::take(&mut self.scalars);
        if let Ok(mut spare) = self.tape.spare.try_borrow_mut() {
            *spare = Some((tensors, scalars));
        }
    }
}

impl<E: Float> std::fmt::Debug for Gradients<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reached = (0..self.nodes).filter(|&i| self.reached(i)).count();
        write!(f, "Gradients({} nodes, {reached} reached)", self.nodes)
    }
}

impl<'v, E: Float> Index<Var<'v, E>> for Gradients<'_, E> {
    type Output = Tensor<E>;

    /// # Panics
    ///
    /// When `var` belongs to another tape or was recorded after this backward pass; use
    /// [`Gradients::get`] to get an error instead.
    fn index(&self, var: Var<'v, E>) -> &Tensor<E> {
        self.get(var).unwrap_or_else(|e| panic!("{e}"))
    }
}
