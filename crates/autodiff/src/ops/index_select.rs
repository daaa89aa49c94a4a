//! `index_select`: entries along an axis, in a given order (repeats allowed); the gradient adds
//! each selected entry's upstream gradient back onto the entry it came from.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The entries `indices` along `axis` (PyTorch's `index_select`; [`Var::select_rows`] is
    /// axis 0), for example an embedding lookup or a column subset.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?);
    /// let y = x.index_select(1, &[2, 0, 2])?;
    /// assert_eq!(y.value().to_vec(), vec![3.0, 1.0, 3.0, 6.0, 4.0, 6.0]);
    /// assert_eq!(tape.backward(y.sum())?[x].to_vec(), vec![1.0, 0.0, 2.0, 1.0, 0.0, 2.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For a bad axis or an index past the axis.
    pub fn index_select(self, axis: usize, indices: &[usize]) -> Result<Self> {
        let (start, len) = self.tape().push_indices(indices);
        self.try_record_unary(|x| {
            let value = x.index_select(axis, indices)?;
            Ok((
                Op::IndexSelect {
                    axis: axis as u32,
                    start,
                    len,
                },
                value,
                None,
            ))
        })
    }
}

pub(super) fn backward<E: Float>(
    ctx: &mut BackwardCtx<'_, E>,
    axis: usize,
    indices: &[usize],
) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let g = ctx.grad();
    let shape = ctx.input(0).shape();
    match ctx.slot(0) {
        Some(acc) => acc.index_add(axis, indices, g)?,
        slot @ None => {
            let mut t = Tensor::zeros(shape);
            t.index_add(axis, indices, g)?;
            *slot = Some(t);
        }
    }
    Ok(())
}
