//! Decision boundaries: a network's output evaluated on a grid over the plane, for networks with
//! two inputs (the 2-D datasets), ready to be drawn.

use tapegrad_tensor::{Float, Tensor};

use crate::error::{Result, data};
use crate::model::Model;

/// A network's output on a regular grid: `values[j * nx + i]` is the output at
/// `(xs[i], ys[j])`: for one output the probability of class 1, for k outputs the predicted
/// class.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The grid's x coordinates, increasing.
    pub xs: Vec<f64>,
    /// The grid's y coordinates, increasing.
    pub ys: Vec<f64>,
    /// The outputs, row by row (y outer, x inner).
    pub values: Vec<f64>,
}

impl Grid {
    /// The value at column `i`, row `j`.
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.values[j * self.xs.len() + i]
    }
}

/// The bounding box of a `[n, 2]` point set, widened by `margin` on every side.
///
/// # Errors
///
/// [`crate::NnError::Data`] when `points` is not `[n > 0, 2]`.
pub fn bounds<E: Float>(points: &Tensor<E>, margin: f64) -> Result<((f64, f64), (f64, f64))> {
    if points.rank() != 2 || points.shape()[1] != 2 || points.shape()[0] == 0 {
        return Err(data(
            "bounds",
            format!("need [n > 0, 2] points, got {:?}", points.shape()),
        ));
    }
    let lo = points.map(|v| -v).max_axis(0, false)?.neg();
    let hi = points.max_axis(0, false)?;
    let v = |t: &Tensor<E>, i: usize| t.as_slice()[i].to_f64();
    Ok((
        (v(&lo, 0) - margin, v(&hi, 0) + margin),
        (v(&lo, 1) - margin, v(&hi, 1) + margin),
    ))
}

/// Evaluates a two-input model on an `nx x ny` grid over `x_range x y_range` (batched
/// predictions without gradients).
///
/// # Errors
///
/// [`crate::NnError::Data`] when the network does not take two inputs or a count is below 2;
/// [`tapegrad_tensor::TensorError::TooLarge`] or [`tapegrad_tensor::TensorError::Alloc`] for a
/// grid too large to hold.
pub fn decision_grid<E: Float, M: Model<E> + ?Sized>(
    net: &M,
    x_range: (f64, f64),
    y_range: (f64, f64),
    (nx, ny): (usize, usize),
) -> Result<Grid> {
    if let Err(e) = net.predict(&Tensor::zeros(&[1, 2])) {
        return Err(data(
            "decision_grid",
            format!("needs a model of 2 inputs, this one refuses them: {e}"),
        ));
    }
    if nx < 2 || ny < 2 {
        return Err(data(
            "decision_grid",
            format!("needs at least 2 x 2 points, got {nx} x {ny}"),
        ));
    }
    let line = |(a, b): (f64, f64), n: usize| -> Vec<f64> {
        (0..n)
            .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
            .collect()
    };
    // The grid is sized by the caller: its element count is checked and its buffer reserved
    // fallibly, so an absurd resolution is an error, not an abort.
    let count = tapegrad_tensor::checked_numel("decision_grid", &[nx, ny, 2])?;
    let mut points = Vec::new();
    points
        .try_reserve_exact(count)
        .map_err(|_| tapegrad_tensor::TensorError::Alloc {
            op: "decision_grid",
            shape: vec![nx * ny, 2],
            bytes: count as u128 * size_of::<E>() as u128,
        })?;
    let (xs, ys) = (line(x_range, nx), line(y_range, ny));
    for &y in &ys {
        for &x in &xs {
            points.push(E::from_f64(x));
            points.push(E::from_f64(y));
        }
    }
    let p = net.predict(&Tensor::from_vec(points, &[nx * ny, 2])?)?;
    let values = if p.shape()[1] == 1 {
        p.as_slice().iter().map(|v| v.to_f64()).collect()
    } else {
        p.argmax_indices(1)?.into_iter().map(|c| c as f64).collect()
    };
    Ok(Grid { xs, ys, values })
}
