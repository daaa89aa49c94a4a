//! Code a user writes on the public API: gradcheck with the crate's own error type and `?`, on
//! helpers written for f32 and for any element type.

use tapegrad::autodiff::gradcheck;
use tapegrad::prelude::*;

/// A helper written once for any element type: a GELU-gated residual block, returning the
/// crate-wide error so `?` works on tensor and autodiff errors alike.
fn block<'t, E: tapegrad::tensor::Float>(
    x: Var<'t, E>,
    w: Var<'t, E>,
) -> Result<Var<'t, E>, tapegrad::Error> {
    let h = x.matmul(w)?.gelu();
    Ok(h.add(x)?.layer_norm(
        x.tape().constant(Tensor::ones(&[x.shape()[1]])),
        x.tape().constant(Tensor::zeros(&[x.shape()[1]])),
        E::from_f64(1e-5),
    )?)
}

#[test]
fn gradcheck_takes_the_crates_error_and_generic_helpers() {
    let x = Tensor::<f64>::from_fn(&[3, 4], |i| (i as f64 * 0.37).sin());
    let w = Tensor::<f64>::from_fn(&[4, 4], |i| (i as f64 * 0.11).cos() * 0.5);
    let report =
        gradcheck::<f64, tapegrad::Error, _>(&[x, w], |_, v| Ok(block(v[0], v[1])?.square().sum()))
            .unwrap();
    assert!(report.passed(1e-6), "{report:?}");
    // The same helper in f32, checked in f32 with its coarser step.
    let x = Tensor::<f32>::from_fn(&[3, 4], |i| (i as f32 * 0.37).sin());
    let w = Tensor::<f32>::from_fn(&[4, 4], |i| (i as f32 * 0.11).cos() * 0.5);
    let report =
        gradcheck::<f32, tapegrad::Error, _>(&[x, w], |_, v| Ok(block(v[0], v[1])?.square().sum()))
            .unwrap();
    assert!(report.passed(2e-2), "{report:?}");
    // An error inside the closure comes back as the caller's type.
    let bad = Tensor::<f64>::ones(&[2, 3]);
    let err = gradcheck::<f64, tapegrad::Error, _>(&[bad], |_, v| Ok(v[0].matmul(v[0])?.sum()))
        .unwrap_err();
    assert!(
        err.to_string().contains("shape mismatch in matmul"),
        "{err}"
    );
}
