//! `linear`: Y = X W + b for `X: [n, k]`, `W: [k, m]`, `b: [m]` (a layer's affine map, as
//! PyTorch's `addmm` or `F.linear`), as one node. The forward starts the output from the bias
//! rows and accumulates the product into it (one kernel call, no separate add); the backward is
//! dX = G W^T, dW = X^T G and db = the column sums of G, with no copy of G.

use tapegrad_tensor::{Float, Tensor, Transpose};

use super::{BackwardCtx, Op, relu, sigmoid, tanh};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// The affine map `self W + b` of `self: [..., k]` (rank 2 or more) with `w: [k, m]` and `b: [m]`: one
    /// node instead of a `matmul` and a broadcasting `add`, with the same values and gradients.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?);
    /// let w = tape.var(Tensor::from_vec(vec![1.0, 0.0, 1.0, 1.0, 1.0, 0.0], &[2, 3])?);
    /// let b = tape.var(Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3])?);
    /// let y = x.linear(w, b)?;
    /// assert_eq!(y.value().to_vec(), vec![13.0, 22.0, 31.0, 17.0, 24.0, 33.0]);
    /// let grads = tape.backward(y.sum())?;
    /// assert_eq!(grads[b].to_vec(), vec![2.0, 2.0, 2.0]); // one per row
    /// assert_eq!(grads[w].to_vec(), vec![4.0, 4.0, 4.0, 6.0, 6.0, 6.0]); // X^T 1
    /// assert_eq!(grads[x].to_vec(), vec![2.0, 2.0, 2.0, 2.0]); // 1 W^T
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `self` is not `[..., k]` (rank 2 or more) or `w` not `[k, m]`, `b` is not `[m]`, or
    /// the vars belong to several tapes.
    pub fn linear(self, w: Var<'t, E>, b: Var<'t, E>) -> Result<Self> {
        Var::record_nary(&[self, w, b], "linear", |v| {
            Ok((Op::Linear, v[0].linear(v[1], v[2])?, None))
        })
    }

    /// A dense layer with the logistic sigmoid, `sigmoid(self W + b)`, as one node: the same
    /// values and gradients, bit for bit, as [`Var::linear`] followed by [`Var::sigmoid`], with
    /// one node fewer to record and differentiate and no separate pre-activation tensor (the
    /// activation is applied in place, and the backward reads only the output). Shapes as
    /// [`Var::linear`].
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, -2.0, 0.5, 3.0], &[2, 2])?);
    /// let w = tape.var(Tensor::from_vec(vec![0.3, -0.1, 0.2, 0.4], &[2, 2])?);
    /// let b = tape.var(Tensor::from_vec(vec![0.1, -0.2], &[2])?);
    /// let fused = x.linear_sigmoid(w, b)?;
    /// let apart = x.linear(w, b)?.sigmoid();
    /// assert_eq!(fused.value(), apart.value());
    /// let (gf, ga) = (tape.backward(fused.sum())?, tape.backward(apart.sum())?);
    /// assert_eq!(gf[w], ga[w]);
    /// assert_eq!(gf[x], ga[x]);
    /// assert_eq!(fused.op_name(), "linear_sigmoid");
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Var::linear`].
    pub fn linear_sigmoid(self, w: Var<'t, E>, b: Var<'t, E>) -> Result<Self> {
        self.linear_act(w, b, Act::Sigmoid)
    }

    /// A dense layer with tanh, `tanh(self W + b)`, as one node: the same values and gradients
    /// as [`Var::linear`] followed by [`Var::tanh`] (see [`Var::linear_sigmoid`]).
    ///
    /// # Errors
    ///
    /// As [`Var::linear`].
    pub fn linear_tanh(self, w: Var<'t, E>, b: Var<'t, E>) -> Result<Self> {
        self.linear_act(w, b, Act::Tanh)
    }

    /// A dense layer with the rectifier, `relu(self W + b)`, as one node: the same values and
    /// gradients as [`Var::linear`] followed by [`Var::relu`] (see [`Var::linear_sigmoid`]).
    ///
    /// # Errors
    ///
    /// As [`Var::linear`].
    pub fn linear_relu(self, w: Var<'t, E>, b: Var<'t, E>) -> Result<Self> {
        self.linear_act(w, b, Act::Relu)
    }

    fn linear_act(self, w: Var<'t, E>, b: Var<'t, E>, act: Act) -> Result<Self> {
        Var::record_nary(&[self, w, b], act.name(), |v| {
            let mut y = v[0].linear(v[1], v[2])?;
            act.apply(&mut y);
            Ok((Op::LinearAct(act), y, None))
        })
    }
}

/// The activation a fused layer node ([`Op::LinearAct`]) applies to its affine map: one whose
/// derivative the output alone gives, so the pre-activation need not be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Sigmoid,
    Tanh,
    Relu,
}

impl Act {
    /// The node's op name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Act::Sigmoid => "linear_sigmoid",
            Act::Tanh => "linear_tanh",
            Act::Relu => "linear_relu",
        }
    }

    /// Applies the activation to `z` in place, element by element as the op of that name does
    /// (the same function, so the same bits).
    pub(crate) fn apply<E: Float>(self, z: &mut Tensor<E>) {
        match self {
            Act::Sigmoid => z.map_inplace_par(sigmoid::forward),
            Act::Tanh => z.map_inplace_par(tanh::forward),
            Act::Relu => z.map_inplace(relu::forward),
        }
    }
}

/// The gradient of the pre-activation, `g act'(z)`, from the output `y` alone: each op's own
/// derivative with `y` for its input too. Only relu reads its input, as `x > 0`, and
/// `relu(x) > 0` exactly when `x > 0` (NaN included: `NaN.max(0)` is 0).
fn pre_activation_grad<E: Float>(act: Act, g: &Tensor<E>, y: &Tensor<E>) -> Result<Tensor<E>> {
    fn run<E: Float>(
        g: &Tensor<E>,
        y: &Tensor<E>,
        f: impl Fn(E, E, E) -> E + Sync,
    ) -> Result<Tensor<E>> {
        let (gs, ys) = (g.as_slice(), y.as_slice());
        super::from_terms(g.shape(), |start| {
            gs[start..]
                .iter()
                .zip(&ys[start..])
                .map(|(&g, &y)| f(g, y, y))
        })
    }
    match act {
        Act::Sigmoid => run(g, y, sigmoid::derivative),
        Act::Tanh => run(g, y, tanh::derivative),
        Act::Relu => run(g, y, relu::derivative),
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    backward_from(ctx, ctx.grad())
}

/// The backward of a fused layer node: the pre-activation's gradient, then [`backward`]'s.
pub(super) fn backward_act<E: Float>(ctx: &mut BackwardCtx<'_, E>, act: Act) -> Result<()> {
    let dz = pre_activation_grad(act, ctx.grad(), ctx.output())?;
    backward_from(ctx, &dz)
}

/// dX = G W^T, dW = X^T G and db = the column sums of G, for the output gradient `g`.
fn backward_from<E: Float>(ctx: &mut BackwardCtx<'_, E>, g: &Tensor<E>) -> Result<()> {
    let (x, w) = (ctx.input(0), ctx.input(1));
    super::matmul::accumulate_product(ctx, 0, g, Transpose::No, w, Transpose::Yes)?;
    super::matmul::accumulate_product(ctx, 1, x, Transpose::Yes, g, Transpose::No)?;
    ctx.accumulate_reduced(2, g)
}
