//! Replaying a recorded step: new values for its leaves, every node recomputed in place, the
//! graph kept (JAX's `jit` and `torch.compile` in spirit, on the tape).

use tapegrad_tensor::{Float, Tensor};

use crate::error::{AutodiffError, Result};
use crate::ops::Op;
use crate::ops::replay::{scalar, tensor};
use crate::tape::Tape;
use crate::var::Var;

impl<E: Float> Tape<E> {
    /// The var of node `id` (its position on the tape, as [`Tape::trace`] numbers it): for
    /// reading any node's value after a [`Tape::replay`], or a node built inside a function.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let _ = x.exp().ln();
    /// assert_eq!(tape.node(2)?.item()?, 2.0); // ln(exp(2))
    /// assert!(tape.node(3).is_err());
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AutodiffError::Replay`] naming `id` when the
    /// tape holds no such node.
    pub fn node(&self, id: usize) -> Result<Var<'_, E>> {
        let n = self.len();
        if id >= n {
            return Err(AutodiffError::Replay {
                id,
                reason: format!("the tape holds {n} nodes"),
            });
        }
        Ok(Var::at(self, id as u32))
    }

    /// Recomputes every node of the tape from new values of some of its leaves (vars or
    /// constants), keeping the recorded graph: no node is recorded, nothing is dispatched but
    /// each node's own forward, and buffers come back from the pool, so a training step whose
    /// graph does not change is recorded once and replayed. Afterwards every `Var` reads its
    /// new value and [`Tape::backward`] differentiates the new values; a replayed step gives
    /// bit for bit the values and gradients a new recording would.
    ///
    /// What the graph fixed stays fixed: shapes (a leaf given another shape is an error, not a
    /// wrong answer), labels of cross-entropy, selected rows and indices, masks of
    /// `where_cond`, `masked_fill` and dropout (a replay does not draw a new dropout mask).
    /// Argmax positions (max pooling, `max_axis`) are recomputed. Gradients taken before keep
    /// their values. Nodes recorded by [`Tape::grad`] are replayed too.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// // Gradient descent on (w - 3)^2, the graph recorded once.
    /// let tape = Tape::<f64>::new();
    /// let mut w_value = Tensor::scalar(0.0);
    /// let w = tape.var(w_value.clone());
    /// let loss = (w - 3.0).square();
    /// for _ in 0..100 {
    ///     let g = tape.backward(loss)?[w].item()?;
    ///     w_value = Tensor::scalar(w_value.item()? - 0.1 * g);
    ///     tape.replay(&[(w, &w_value)])?;
    /// }
    /// assert!((w.item()? - 3.0).abs() < 1e-9);
    /// assert!(tape.replay(&[(w, &Tensor::zeros(&[2]))]).is_err()); // shapes are fixed
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AutodiffError::Replay`] naming the node when a var given is not a leaf or constant, or
    /// its new value's shape differs from the recorded one; [`AutodiffError::ForeignVar`] for a
    /// var of another tape; errors of an op's forward (a custom op's); and
    /// [`AutodiffError::NonFinite`] from the finite check when it is on. On an error the values
    /// are partly recomputed: replay again before reading them.
    pub fn replay(&self, leaves: &[(Var<'_, E>, &Tensor<E>)]) -> Result<()> {
        // Values change under live vars from here on: the scalar path stops trusting theirs.
        self.replayed.set(true);
        for &(v, t) in leaves {
            v.check_tape(self, "replay")?;
            let store = self.store();
            let i = v.index();
            if !matches!(store.nodes[i].op, Op::Leaf | Op::Constant) {
                return Err(AutodiffError::Replay {
                    id: i,
                    reason: format!(
                        "it is a {} node, not a leaf or constant: only leaves take new values",
                        store.op_name(i)
                    ),
                });
            }
            if store.shape(i) != t.shape() {
                return Err(AutodiffError::Replay {
                    id: i,
                    reason: format!(
                        "it was recorded with shape {:?}, the new value has {:?}",
                        store.shape(i),
                        t.shape()
                    ),
                });
            }
        }
        self.pending.set(None);
        {
            let mut store = self.store.borrow_mut();
            for &(v, t) in leaves {
                store.set_value(v.index(), t);
            }
        }
        let check = self.check_finite.get();
        let n = self.len();
        for i in 0..n {
            let (is_leaf, scalar_value) = {
                let store = self.store();
                let node = &store.nodes[i];
                if matches!(node.op, Op::Leaf | Op::Constant) {
                    (true, None)
                } else {
                    let inputs = store.inputs(i);
                    let all_rank0 =
                        node.rank0() && inputs.iter().all(|&j| store.nodes[j as usize].rank0());
                    let first = |k: usize| {
                        inputs
                            .get(k)
                            .map_or(E::ZERO, |&j| store.nodes[j as usize].x)
                    };
                    let s = if all_rank0 {
                        scalar(&node.op, first(0), first(1))
                    } else {
                        None
                    };
                    (false, s)
                }
            };
            if is_leaf {
                continue;
            }
            let finite = match scalar_value {
                Some(x) => {
                    self.store.borrow_mut().nodes[i].x = x;
                    x.is_finite()
                }
                None if matches!(self.store().nodes[i].op, Op::Linear | Op::LinearAct(_)) => {
                    // A layer recomputed into its own buffer (`Tensor::linear_into`, then a
                    // fused layer's activation in place): no buffer taken from the pool or
                    // given back.
                    let Some(mut out) = self.store.borrow_mut().take_value(i) else {
                        unreachable!("a linear node's value is its own tensor");
                    };
                    let result = {
                        let store = self.store();
                        let v = |k: usize| store.value(store.inputs(i)[k] as usize);
                        let r = v(0).linear_into(&v(1), &v(2), &mut out);
                        if let (Ok(()), Op::LinearAct(act)) = (&r, store.nodes[i].op) {
                            act.apply(&mut out);
                        }
                        r
                    };
                    let finite = !check || out.all_finite();
                    self.store.borrow_mut().put_value(i, out);
                    result?;
                    finite
                }
                None => {
                    let r = tensor(&self.store(), i)?;
                    let finite = !check || r.value.all_finite();
                    self.store.borrow_mut().set_recomputed(i, r);
                    finite
                }
            };
            if check && !finite && self.pending.get().is_none() {
                self.pending.set(Some(i));
            }
        }
        self.take_pending()
    }
}
