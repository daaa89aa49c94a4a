//! Dense `f32`/`f64` tensors for tapegrad: NumPy broadcasting, reductions, shape ops and matrix
//! products on the `matrixmultiply` crate's kernels.
//!
//! Tensors are row-major and own their data. Shapes up to rank 4 and data up to four elements
//! live inline (no heap allocation), so the scalar graph nodes of `tapegrad-autodiff` stay cheap.
//!
//! ```
//! use tapegrad_tensor::Tensor;
//!
//! // 10 samples with 3 features times a 3 x 7 weight matrix: 7 features per sample.
//! let x = Tensor::<f32>::ones(&[10, 3]);
//! let w = Tensor::<f32>::full(&[3, 7], 0.5);
//! let h = x.matmul(&w)?;
//! assert_eq!(h.shape(), &[10, 7]);
//! assert_eq!(h.get(&[0, 0])?, 1.5);
//!
//! // Broadcasting: a bias row is added to every sample.
//! let b = Tensor::<f32>::full(&[7], 1.0);
//! assert_eq!(h.add(&b)?.get(&[9, 6])?, 2.5);
//!
//! // Errors name the op and the shapes.
//! let err = x.matmul(&x).unwrap_err();
//! assert_eq!(err.to_string(), "shape mismatch in matmul: lhs [10, 3], rhs [10, 3]");
//! # Ok::<(), tapegrad_tensor::TensorError>(())
//! ```
//!
//! # Threads
//!
//! With the `threads` feature (on by default) a large product (at least 2^24 multiply-adds) is
//! split into row (or column) blocks computed on that many threads at once, each block by
//! matrixmultiply's single-threaded kernel; `exp`, `ln`, `sigmoid`, `tanh`, `softplus` and
//! `powf` over at least 2^13 elements per thread are split the same way. Smaller work stays on
//! the calling thread, where handing it to another core costs more than it saves. The caller
//! computes the first block and a rayon pool of tapegrad's own (one worker fewer than the cores)
//! the others, so any number of threads may multiply at once and a product may run inside a
//! parallel job; [`run_parallel`] hands the pool your own jobs. The number of blocks is
//! [`set_num_threads`] if called, else the environment variable `TAPEGRAD_NUM_THREADS`, else the
//! number of cores the process may use.
#![deny(missing_docs)]

mod conv;
mod display;
mod elementwise;
mod error;
mod float;
pub mod kernels;
mod layout;
mod matmul;
mod ops;
mod pool;
mod reduce;
mod shape_ops;
mod tensor;
mod workers;

pub use elementwise::broadcast_shape;
pub use error::{Result, TensorError};
pub use float::Float;
pub use matmul::{Transpose, gemm_into, gemm_tn_batch_sum_into, num_threads, set_num_threads};
pub use pool::{pooled_bytes, release_buffers};
pub use tensor::{Shape, Tensor, checked_numel, contiguous_strides, numel};
pub use workers::{
    PAR_MIN_CHEAP, awake_workers, par_chunk_len, par_chunks_mut, par_chunks_mut_by, run_parallel,
    set_spin_time, spin_time,
};
