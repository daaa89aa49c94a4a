//! `Gradients`: the result of a backward pass, indexed by `Var`.

use std::cell::OnceCell;
use std::ops::Index;

use tapegrad_tensor::{Float, Shape, Tensor};

use crate::error::{AutodiffError, Result};
use crate::tape::{Node, Tape};
use crate::var::Var;

/// The gradients of one loss with respect to the nodes of one tape.
///
/// `grads[var]` is the gradient with `var`'s shape. A var with no path to the loss gets zeros,
/// and [`Gradients::reaches`] tells the two cases apart: there is never a silent `None`.
pub struct Gradients<E: Float = f32> {
    tape_id: u64,
    generation: u64,
    /// The gradient of every node up to the loss that a path from the loss reached.
    grads: Vec<Option<Tensor<E>>>,
    /// For nodes not reached (sorted by id): their shape, and zeros made on first access.
    unreached: Vec<(usize, Shape, OnceCell<Tensor<E>>)>,
}

impl<E: Float> Gradients<E> {
    pub(crate) fn new(tape: &Tape<E>, nodes: &[Node<E>], grads: Vec<Option<Tensor<E>>>) -> Self {
        let unreached = nodes
            .iter()
            .enumerate()
            .filter(|&(i, _)| grads.get(i).is_none_or(Option::is_none))
            .map(|(i, n)| (i, Shape::from_slice(n.value.shape()), OnceCell::new()))
            .collect();
        Gradients {
            tape_id: tape.id(),
            generation: tape.generation(),
            grads,
            unreached,
        }
    }

    fn check(&self, var: Var<'_, E>, op: &'static str) -> Result<usize> {
        let tape = var.tape();
        let i = var.index();
        let known = i < self.grads.len() || self.unreached.last().is_some_and(|u| u.0 >= i);
        if tape.id() != self.tape_id || tape.generation() != self.generation || !known {
            return Err(AutodiffError::ForeignVar { op, id: i });
        }
        Ok(i)
    }

    /// The gradient of `var` (zeros when it does not reach the loss).
    ///
    /// # Errors
    ///
    /// [`AutodiffError::ForeignVar`] when `var` belongs to another tape, or to this tape after a
    /// [`Tape::clear`].
    pub fn get(&self, var: Var<'_, E>) -> Result<&Tensor<E>> {
        let i = self.check(var, "gradients lookup")?;
        if let Some(Some(g)) = self.grads.get(i) {
            return Ok(g);
        }
        let k = self
            .unreached
            .binary_search_by_key(&i, |u| u.0)
            .map_err(|_| AutodiffError::ForeignVar {
                op: "gradients lookup",
                id: i,
            })?;
        let (_, shape, cell) = &self.unreached[k];
        Ok(cell.get_or_init(|| Tensor::zeros(shape)))
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

impl<E: Float> std::fmt::Debug for Gradients<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reached = self.grads.iter().filter(|g| g.is_some()).count();
        write!(
            f,
            "Gradients({} nodes, {reached} reached)",
            reached + self.unreached.len()
        )
    }
}

impl<'t, E: Float> Index<Var<'t, E>> for Gradients<E> {
    type Output = Tensor<E>;

    /// # Panics
    ///
    /// When `var` belongs to another tape; use [`Gradients::get`] to get an error instead.
    fn index(&self, var: Var<'t, E>) -> &Tensor<E> {
        self.get(var).unwrap_or_else(|e| panic!("{e}"))
    }
}
