//! The finite check: finds the first NaN or infinity and names the node that made it.

use tapegrad_tensor::{Float, Tensor};

use crate::error::{AutodiffError, NonFiniteReport, Result};
use crate::tape::Store;

/// Returns [`AutodiffError::NonFinite`] if `t` holds a NaN or an infinity: node `id`'s forward
/// value, or (with `flowing_to = Some(j)`) the gradient that node `id`'s backward has just added
/// into its input `j`. The report names node `id`, the op that produced the value.
pub(crate) fn check<E: Float>(
    store: &Store<E>,
    id: usize,
    t: &Tensor<E>,
    phase: &'static str,
    flowing_to: Option<usize>,
) -> Result<()> {
    if t.all_finite() {
        return Ok(());
    }
    let bad: Vec<(usize, f64)> = t
        .as_slice()
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_finite())
        .take(4)
        .map(|(i, v)| (i, v.to_f64()))
        .collect();
    let lo = id.saturating_sub(3);
    let hi = (id + 4).min(store.nodes.len());
    let context = crate::trace::rows(store, lo..hi, None, Some(id));
    Err(AutodiffError::NonFinite(Box::new(NonFiniteReport {
        phase,
        id,
        op: store.op_name(id).to_string(),
        label: store.label(id).map(str::to_owned),
        flowing_to: flowing_to.map(|j| {
            (
                j,
                store.op_name(j).to_string(),
                store.label(j).map(str::to_owned),
            )
        }),
        input_shapes: store
            .inputs(id)
            .iter()
            .map(|&i| store.shape(i as usize).to_vec())
            .collect(),
        values: bad.iter().map(|&(_, v)| v).collect(),
        indices: bad.iter().map(|&(i, _)| i).collect(),
        context,
    })))
}
