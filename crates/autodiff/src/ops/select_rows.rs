//! `select_rows`: the rows (entries of axis 0) at given indices, as for mini-batches. The
//! gradient adds each selected row's upstream gradient back onto its source row (repeated rows
//! accumulate).

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The rows at `indices`, in that order.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2])?);
    /// let rows = x.select_rows(&[2, 0, 2])?;
    /// assert_eq!(rows.value().to_vec(), vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
    /// assert_eq!(tape.backward(rows.sum())?[x].to_vec(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For a scalar, or an index past the last row.
    pub fn select_rows(self, indices: &[usize]) -> Result<Self> {
        let (start, len) = self.tape().push_indices(indices);
        self.try_record_unary(|x| {
            let rows = x.select_rows(indices)?;
            Ok((Op::SelectRows { start, len }, rows, None))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, rows: &[usize]) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let g = ctx.grad();
    let shape = ctx.input(0).shape();
    match ctx.slot(0) {
        Some(acc) => acc.index_add_rows(rows, g)?,
        slot @ None => {
            let mut t = Tensor::zeros(shape);
            t.index_add_rows(rows, g)?;
            *slot = Some(t);
        }
    }
    Ok(())
}
