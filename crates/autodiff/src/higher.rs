//! Derivatives of derivatives: gradients recorded as graph nodes ([`Tape::grad`]), and the
//! helpers built on them: Hessian-vector products, dense Hessians, Jacobians and the
//! second-order gradient check.

use smallvec::SmallVec;
use tapegrad_tensor::{Float, Tensor};

use crate::error::{AutodiffError, Result};
use crate::gradcheck::{GradcheckReport, check};
use crate::ops::vjp::{VjpCtx, vjp};
use crate::tape::Tape;
use crate::var::Var;

impl<E: Float> Tape<E> {
    /// The gradients of `y` with respect to each of `wrt`, as nodes of this tape: each
    /// returned `Var`'s value is dy/dwrt\[i\], and it is differentiable again with `grad` or
    /// [`Tape::backward`], to any order (PyTorch's `autograd.grad(..., create_graph=True)`,
    /// JAX's `grad(grad(f))`). `wrt` may hold intermediate nodes as well as leaves; an input
    /// `y` does not reach gets a zeros-valued constant.
    ///
    /// Each op's backward is recorded with `Var` ops (its differentiable path), so the gradient
    /// graph shows in [`Tape::trace`] (its ops marked `grad:`) and [`Tape::to_dot`] (dashed
    /// boxes) after the nodes of `y`. `backward` keeps its own tensor code, which records nothing.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.5));
    /// let y = x.sin();
    /// let [dy] = tape.grad(y, &[x])?[..] else { unreachable!() }; // cos x
    /// let [d2y] = tape.grad(dy, &[x])?[..] else { unreachable!() }; // -sin x
    /// let d3y = tape.backward(d2y)?[x].item()?; // -cos x
    /// assert!((dy.item()? - 0.5f64.cos()).abs() < 1e-15);
    /// assert!((d2y.item()? + 0.5f64.sin()).abs() < 1e-15);
    /// assert!((d3y + 0.5f64.cos()).abs() < 1e-15);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Tape::backward`]: [`AutodiffError::NonScalarLoss`] when `y` does not hold exactly
    /// one element, [`AutodiffError::ForeignVar`] for a var of another tape, the finite check;
    /// and [`AutodiffError::NotTwiceDifferentiable`] naming an op on the way that has no
    /// differentiable backward.
    pub fn grad<'t>(&'t self, y: Var<'t, E>, wrt: &[Var<'t, E>]) -> Result<Vec<Var<'t, E>>> {
        y.check_tape(self, "grad")?;
        for w in wrt {
            w.check_tape(self, "grad")?;
        }
        self.take_pending()?;
        let shape = y.shape();
        if shape.iter().product::<usize>() != 1 {
            return Err(AutodiffError::NonScalarLoss {
                shape: shape.to_vec(),
            });
        }
        let start = self.len() as u32;
        let seed = self.constant(Tensor::ones(&shape));
        let got = grad_from(self, y, seed, wrt, 0);
        let end = self.len() as u32;
        self.store.borrow_mut().grad_ranges.push((start, end));
        let got = got?;
        got.into_iter()
            .zip(wrt)
            .map(|(g, w)| match g {
                Some(g) => Ok(g),
                None => Ok(self.constant(Tensor::zeros(&w.shape()))),
            })
            .collect()
    }
}

/// The differentiable reverse pass: the gradients of `y` (whose upstream gradient is `seed`)
/// with respect to `wrt`, walking only the nodes from `floor` to `y` (a composite op's
/// re-recorded forward walks just its own nodes; its inputs lie below `floor`). `None` where
/// no path leads.
pub(crate) fn grad_from<'t, E: Float>(
    tape: &'t Tape<E>,
    y: Var<'t, E>,
    seed: Var<'t, E>,
    wrt: &[Var<'t, E>],
    floor: usize,
) -> Result<Vec<Option<Var<'t, E>>>> {
    let top = y.index();
    let is_wrt = |j: usize| wrt.iter().any(|w| w.index() == j);
    // `dep[i - floor]`: node i depends on some var of `wrt` (so gradients flow into it).
    let (dep, node_inputs) = {
        let store = tape.store();
        let mut dep = vec![false; top + 1 - floor.min(top + 1)];
        let mut node_inputs: Vec<SmallVec<[u32; 4]>> = Vec::with_capacity(dep.len());
        for i in floor..=top {
            let inputs: SmallVec<[u32; 4]> = SmallVec::from_slice(store.inputs(i));
            dep[i - floor] = is_wrt(i)
                || (store.nodes[i].requires_grad
                    && inputs.iter().any(|&j| {
                        let j = j as usize;
                        is_wrt(j) || (j >= floor && dep[j - floor])
                    }));
            node_inputs.push(inputs);
        }
        (dep, node_inputs)
    };
    let needed = |j: usize| is_wrt(j) || (j >= floor && dep[j - floor]);
    let mut grads: Vec<Option<Var<'t, E>>> = vec![None; dep.len()];
    // Gradients of `wrt` vars below `floor` (a composite's inputs).
    let mut below: SmallVec<[(usize, Var<'t, E>); 4]> = SmallVec::new();
    if top >= floor {
        grads[top - floor] = Some(seed);
    }
    for i in (floor..=top).rev() {
        let Some(g) = grads[i - floor] else { continue };
        if !dep[i - floor] {
            continue;
        }
        let inputs = &node_inputs[i - floor];
        if inputs.is_empty() {
            continue;
        }
        let wants: SmallVec<[bool; 4]> = inputs.iter().map(|&j| needed(j as usize)).collect();
        if !wants.iter().any(|&w| w) {
            continue;
        }
        let op = tape.store().nodes[i].op;
        let ctx = VjpCtx {
            tape,
            id: i,
            inputs: inputs.clone(),
            wants,
            g,
        };
        let contribs = vjp(&op, &ctx)?;
        for (k, c) in contribs.into_iter().enumerate() {
            let Some(c) = c else { continue };
            let j = inputs[k] as usize;
            if j >= floor {
                let slot = &mut grads[j - floor];
                *slot = Some(match *slot {
                    Some(prev) => prev.add(c)?,
                    None => c,
                });
            } else if let Some((_, prev)) = below.iter_mut().find(|(b, _)| *b == j) {
                *prev = prev.add(c)?;
            } else {
                below.push((j, c));
            }
        }
    }
    Ok(wrt
        .iter()
        .map(|w| {
            let j = w.index();
            if j >= floor && j <= top {
                grads[j - floor]
            } else {
                below.iter().find(|(b, _)| *b == j).map(|(_, v)| *v)
            }
        })
        .collect())
}

/// The Hessian-vector product H v of the scalar function `f` at `x`, by double backward: the
/// gradient is recorded as a graph ([`Tape::grad`]), its dot product with `v` is
/// differentiated once more. Costs about two gradient evaluations; no Hessian is formed.
///
/// ```
/// use tapegrad_autodiff::{Tape, hvp};
/// use tapegrad_tensor::Tensor;
/// // f(x) = sum(x^3): H = diag(6 x).
/// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3])?;
/// let v = Tensor::from_vec(vec![1.0, 0.5, 0.0], &[3])?;
/// let hv = hvp(&x, &v, |_tape, x| Ok(x.powf(3.0).sum()))?;
/// assert_eq!(hv.to_vec(), vec![6.0, 6.0, 0.0]);
/// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
/// ```
///
/// # Errors
///
/// [`AutodiffError::Tensor`] (a shape mismatch) when `v`'s shape is not `x`'s; any error
/// of `f`, of `grad` or of `backward`.
pub fn hvp<E, F>(x: &Tensor<E>, v: &Tensor<E>, f: F) -> Result<Tensor<E>>
where
    E: Float,
    F: for<'t> Fn(&'t Tape<E>, Var<'t, E>) -> Result<Var<'t, E>>,
{
    if x.shape() != v.shape() {
        return Err(tapegrad_tensor::TensorError::ShapeMismatch {
            op: "hvp (x, v)",
            lhs: x.shape().to_vec(),
            rhs: v.shape().to_vec(),
        }
        .into());
    }
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let y = f(&tape, xv)?;
    let g = tape.grad(y, &[xv])?[0];
    let dot = g.mul(tape.constant(v.clone()))?.sum();
    let grads = tape.backward(dot)?;
    Ok(grads.get(xv)?.clone())
}

/// The dense Hessian of the scalar function `f` at `x`, shape `[n, n]` for `x` of `n`
/// elements (in `x`'s row-major order): one gradient graph, then one backward per row. For
/// small inputs; use [`hvp`] for large ones.
///
/// ```
/// use tapegrad_autodiff::hessian;
/// use tapegrad_tensor::Tensor;
/// // f(x, y) = x^2 + 3y + xy: H = [[2, 1], [1, 0]].
/// let p = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2])?;
/// let h = hessian(&p, |_tape, v| {
///     let (x, y) = (v.narrow(0, 0, 1)?.sum(), v.narrow(0, 1, 1)?.sum());
///     Ok(x.square().add(y.mul_scalar(3.0))?.add(x.mul(y)?)?)
/// })?;
/// assert_eq!(h.to_vec(), vec![2.0, 1.0, 1.0, 0.0]);
/// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
/// ```
///
/// # Errors
///
/// Any error of `f`, of `grad` or of `backward`.
pub fn hessian<E, F>(x: &Tensor<E>, f: F) -> Result<Tensor<E>>
where
    E: Float,
    F: for<'t> Fn(&'t Tape<E>, Var<'t, E>) -> Result<Var<'t, E>>,
{
    let n = x.len();
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let y = f(&tape, xv)?;
    let g = tape.grad(y, &[xv])?[0].reshape(&[n])?;
    rows_by_backward(&tape, g, xv)
}

/// The matrix whose row i is the gradient of element i of the vector `ys` with respect to
/// `x`: one backward per element, `[ys.len, x.len]`.
fn rows_by_backward<'t, E: Float>(
    tape: &'t Tape<E>,
    ys: Var<'t, E>,
    x: Var<'t, E>,
) -> Result<Tensor<E>> {
    let (m, n) = (ys.shape()[0], x.shape().iter().product::<usize>());
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        let grads = tape.backward(ys.narrow(0, i, 1)?.sum())?;
        out.extend_from_slice(grads.get(x)?.as_slice());
    }
    Ok(Tensor::from_vec(out, &[m, n])?)
}

/// The Jacobian of `f` at `x`, shape `[m, n]` for an output of `m` elements and an input of
/// `n` (both in row-major order): one backward per output element.
///
/// ```
/// use tapegrad_autodiff::jacobian;
/// use tapegrad_tensor::Tensor;
/// // f(x) = x^2 elementwise: J = diag(2x).
/// let x = Tensor::<f64>::from_vec(vec![1.0, -3.0], &[2])?;
/// let j = jacobian(&x, |_tape, x| Ok(x.square()))?;
/// assert_eq!(j.to_vec(), vec![2.0, 0.0, 0.0, -6.0]);
/// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
/// ```
///
/// # Errors
///
/// Any error of `f` or of `backward`.
pub fn jacobian<E, F>(x: &Tensor<E>, f: F) -> Result<Tensor<E>>
where
    E: Float,
    F: for<'t> Fn(&'t Tape<E>, Var<'t, E>) -> Result<Var<'t, E>>,
{
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let y = f(&tape, xv)?;
    let m = y.shape().iter().product::<usize>();
    rows_by_backward(&tape, y.reshape(&[m])?, xv)
}

/// The second-order gradient check (PyTorch's `gradgradcheck`): the first gradients of `f`,
/// recorded by [`Tape::grad`], are folded into one scalar with fixed weights, and that
/// scalar's gradient (which goes through every op's differentiable backward) is checked
/// against central differences of it, as [`crate::gradcheck()`] does for first derivatives.
///
/// ```
/// use tapegrad_autodiff::gradgradcheck;
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::<f64>::from_vec(vec![0.3, -1.2, 2.0], &[3])?;
/// let report = gradgradcheck(&[x], |_, v| Ok(v[0].tanh().mul(v[0].exp())?.sum()))?;
/// assert!(report.passed(1e-6), "{report:?}");
/// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
/// ```
///
/// # Errors
///
/// Any error of `f`, of `grad` or of `backward`.
pub fn gradgradcheck<E, F>(inputs: &[Tensor<E>], f: F) -> Result<GradcheckReport>
where
    E: Float,
    F: for<'t> Fn(&'t Tape<E>, &[Var<'t, E>]) -> Result<Var<'t, E>>,
{
    // Fixed weights, different per element, so no second derivative can cancel out.
    let weights: Vec<Tensor<E>> = inputs
        .iter()
        .enumerate()
        .map(|(k, t)| {
            Tensor::from_fn(t.shape(), |i| {
                E::from_f64(0.5 + ((i * 7 + k * 3) % 11) as f64 / 11.0)
            })
        })
        .collect();
    let h = if E::DTYPE == "f32" { 5e-3 } else { 1e-6 };
    check(inputs, h, true, |tape, vars| {
        let y = f(tape, vars)?;
        let grads = tape.grad(y, vars)?;
        let mut total: Option<Var<'_, E>> = None;
        for (g, w) in grads.into_iter().zip(&weights) {
            let term = g.mul(tape.constant(w.clone()))?.sum();
            total = Some(match total {
                Some(t) => t.add(term)?,
                None => term,
            });
        }
        Ok(total.unwrap_or_else(|| tape.constant(Tensor::scalar(E::ZERO))))
    })
}
