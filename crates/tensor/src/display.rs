//! `Display` and `Debug`: readable, truncated for large tensors, with shape and dtype.

use std::fmt;

use crate::float::Float;
use crate::tensor::Tensor;

/// Axes longer than this are shown as their first and last `EDGE` entries around `...`.
const MAX_FULL: usize = 8;
const EDGE: usize = 3;

fn fmt_value<E: Float>(f: &mut fmt::Formatter<'_>, v: E) -> fmt::Result {
    let x = v.to_f64();
    let p = f.precision().unwrap_or(4);
    if x != 0.0 && (x.abs() >= 1e5 || x.abs() < 1e-3) && x.is_finite() {
        write!(f, "{:.*e}", p, x)
    } else {
        write!(f, "{:.*}", p, x)
    }
}

fn fmt_axis<E: Float>(
    f: &mut fmt::Formatter<'_>,
    t: &Tensor<E>,
    axis: usize,
    offset: usize,
    indent: usize,
) -> fmt::Result {
    let shape = t.shape();
    let n = shape[axis];
    let stride: usize = shape[axis + 1..].iter().product();
    let shown: Vec<Option<usize>> = if n > MAX_FULL {
        (0..EDGE)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    write!(f, "[")?;
    for (k, i) in shown.iter().enumerate() {
        if k > 0 {
            if axis + 1 == shape.len() {
                write!(f, ", ")?;
            } else {
                write!(f, ",\n{:width$}", "", width = indent + 1)?;
            }
        }
        match i {
            None => write!(f, "...")?,
            Some(i) if axis + 1 == shape.len() => fmt_value(f, t.as_slice()[offset + i])?,
            Some(i) => fmt_axis(f, t, axis + 1, offset + i * stride, indent + 1)?,
        }
    }
    write!(f, "]")
}

impl<E: Float> fmt::Display for Tensor<E> {
    /// Shows `Tensor[shape] dtype` and the values (4 decimals unless a precision is given),
    /// eliding the middle of axes longer than 8.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let t = Tensor::<f32>::from_vec(vec![1.0, 2.5], &[2])?;
    /// assert_eq!(t.to_string(), "Tensor[2] f32 [1.0000, 2.5000]");
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{:?} {} ", self.shape(), E::DTYPE)?;
        if self.rank() == 0 {
            return fmt_value(f, self.as_slice()[0]);
        }
        fmt_axis(f, self, 0, 0, 0)
    }
}

impl<E: Float> fmt::Debug for Tensor<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
