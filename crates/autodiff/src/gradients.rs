//! `Gradients`: the result of a backward pass, indexed by `Var`.

use std::cell::OnceCell;
use std::ops::Index;

use tapegrad_tensor::{Float, Shape, Tensor};

use crate::error::{AutodiffError, Result};
use crate::tape::{Node, Tape};
use crate::var::Var;

enum Slot<E: Float> {
    Reached(Tensor<E>),
    /// No path to the loss: zeros of the node's shape, made on first access.
    Unreached(Shape, OnceCell<Tensor<E>>),
}

/// The gradients of one loss with respect to the nodes of one tape.
///
/// `grads[var]` is the gradient with `var`'s shape. A var with no path to the loss gets zeros,
/// and [`Gradients::reaches`] tells the two cases apart: there is never a silent `None`.
pub struct Gradients<E: Float = f32> {
    tape_id: u64,
    generation: u64,
    slots: Vec<Slot<E>>,
}

impl<E: Float> Gradients<E> {
    pub(crate) fn new(tape: &Tape<E>, nodes: &[Node<E>], grads: Vec<Option<Tensor<E>>>) -> Self {
        let mut slots: Vec<Slot<E>> = Vec::with_capacity(nodes.len());
        let mut grads = grads.into_iter();
        for node in nodes {
            slots.push(match grads.next().flatten() {
                Some(g) => Slot::Reached(g),
                None => Slot::Unreached(Shape::from_slice(node.value.shape()), OnceCell::new()),
            });
        }
        Gradients {
            tape_id: tape.id(),
            generation: tape.generation(),
            slots,
        }
    }

    fn slot(&self, var: Var<'_, E>, op: &'static str) -> Result<&Slot<E>> {
        let tape = var.tape();
        if tape.id() != self.tape_id || tape.generation() != self.generation {
            return Err(AutodiffError::ForeignVar {
                op,
                id: var.index(),
            });
        }
        self.slots
            .get(var.index())
            .ok_or(AutodiffError::ForeignVar {
                op,
                id: var.index(),
            })
    }

    /// The gradient of `var` (zeros when it does not reach the loss).
    ///
    /// # Errors
    ///
    /// [`AutodiffError::ForeignVar`] when `var` belongs to another tape, or to this tape after a
    /// [`Tape::clear`].
    pub fn get(&self, var: Var<'_, E>) -> Result<&Tensor<E>> {
        Ok(match self.slot(var, "gradients lookup")? {
            Slot::Reached(t) => t,
            Slot::Unreached(shape, cell) => cell.get_or_init(|| Tensor::zeros(shape)),
        })
    }

    /// Whether a path leads from `var` to the loss (false for constants and for vars the loss
    /// does not depend on, and for vars of another tape).
    pub fn reaches(&self, var: Var<'_, E>) -> bool {
        matches!(self.slot(var, "reaches"), Ok(Slot::Reached(_)))
    }

    /// The gradient of node `id` if one reached it (for traces and drawings).
    pub(crate) fn by_index(&self, id: usize) -> Option<&Tensor<E>> {
        match self.slots.get(id)? {
            Slot::Reached(t) => Some(t),
            Slot::Unreached(..) => None,
        }
    }
}

impl<E: Float> std::fmt::Debug for Gradients<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reached = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Reached(_)))
            .count();
        write!(
            f,
            "Gradients({} nodes, {reached} reached)",
            self.slots.len()
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
