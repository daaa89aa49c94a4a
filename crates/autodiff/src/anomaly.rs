//! The finite check: finds the first NaN or infinity and names the node that made it.

use tapegrad_tensor::{Float, Tensor};

use crate::error::{AutodiffError, NonFiniteReport, Result};
use crate::tape::{Node, label_of};

/// Returns [`AutodiffError::NonFinite`] if `t` (node `id`'s value or gradient) holds a NaN or an
/// infinity.
pub(crate) fn check<E: Float>(
    nodes: &[Node<E>],
    labels: &[(u32, std::sync::Arc<str>)],
    id: usize,
    t: &Tensor<E>,
    phase: &'static str,
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
    let node = &nodes[id];
    let lo = id.saturating_sub(3);
    let hi = (id + 4).min(nodes.len());
    let context = crate::trace::rows(nodes, labels, lo..hi, None, Some(id));
    Err(AutodiffError::NonFinite(Box::new(NonFiniteReport {
        phase,
        id,
        op: node.op.name(),
        label: label_of(labels, id).map(str::to_owned),
        input_shapes: node
            .inputs
            .iter()
            .map(|&i| nodes[i as usize].value.shape().to_vec())
            .collect(),
        values: bad.iter().map(|&(_, v)| v).collect(),
        indices: bad.iter().map(|&(i, _)| i).collect(),
        context,
    })))
}
