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
    /// The gradient of every node up to the loss that a path from the loss reached.
    grads: Vec<Option<Tensor<E>>>,
    /// The number of nodes the tape held at backward time.
    nodes: usize,
    /// Zeros for nodes the loss does not reach, by node id, made only when one is looked up
    /// (a training loop never does, so backward does no per-node work for them).
    zeros: OnceCell<Vec<OnceCell<Tensor<E>>>>,
}

impl<'t, E: Float> Gradients<'t, E> {
    pub(crate) fn new(tape: &'t Tape<E>, nodes: usize, grads: Vec<Option<Tensor<E>>>) -> Self {
        Gradients {
            tape,
            grads,
            nodes,
            zeros: OnceCell::new(),
        }
    }

    fn check(&self, var: Var<'_, E>, op: &'static str) -> Result<usize> {
        let i = var.index();
        if !std::ptr::eq(var.tape(), self.tape) || i >= self.nodes {
            return Err(AutodiffError::ForeignVar { op, id: i });
        }
        Ok(i)
    }

    /// The gradient of `var` (zeros when it does not reach the loss).
    ///
    /// # Errors
    ///
    /// [`AutodiffError::ForeignVar`] when `var` belongs to another tape.
    pub fn get(&self, var: Var<'_, E>) -> Result<&Tensor<E>> {
        let i = self.check(var, "gradients lookup")?;
        if let Some(Some(g)) = self.grads.get(i) {
            return Ok(g);
        }
        let zeros = self
            .zeros
            .get_or_init(|| (0..self.nodes).map(|_| OnceCell::new()).collect());
        Ok(zeros[i].get_or_init(|| Tensor::zeros(self.tape.nodes()[i].value.shape())))
    }

    /// Whether a path leads from `var` to the loss (false for constants and for vars the loss
    /// does not depend on, and for vars of another tape).
    pub fn reaches(&self, var: Var<'_, E>) -> bool {
        self.check(var, "reaches").is_ok() && self.by_index(var.index()).is_some()
    }

    /// The gradient of node `id` if one reached it (for traces and drawings).
    pub(crate) fn by_index(&self, id: usize) -> Option<&Tensor<E>> {
        self.grads.get(id)?.as_ref()
    }
}

impl<E: Float> Drop for Gradients<'_, E> {
    /// Hands the buffers back to the tape (the tensors go to the buffer pool).
    fn drop(&mut self) {
        let mut grads = std::mem::take(&mut self.grads);
        grads.clear();
        if let Ok(mut spare) = self.tape.spare.try_borrow_mut() {
            *spare = Some(grads);
        }
    }
}

impl<E: Float> std::fmt::Debug for Gradients<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reached = self.grads.iter().filter(|g| g.is_some()).count();
        write!(f, "Gradients({} nodes, {reached} reached)", self.nodes)
    }
}

impl<'v, E: Float> Index<Var<'v, E>> for Gradients<'_, E> {
    type Output = Tensor<E>;

    /// # Panics
    ///
    /// When `var` belongs to another tape; use [`Gradients::get`] to get an error instead.
    fn index(&self, var: Var<'v, E>) -> &Tensor<E> {
        self.get(var).unwrap_or_else(|e| panic!("{e}"))
    }
}
