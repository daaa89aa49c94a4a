//! A physics-informed network: a [1, 32, 32, 1] tanh network learns u on [0, 2 pi] from the
//! equation u'' = -u with u(0) = 0 and u'(0) = 1 alone. No sample of the solution is shown to
//! it: u' and u'' at the collocation points come from `Tape::grad` (gradients of the network's
//! output with respect to its input, recorded as graphs), the loss is the equation's residual,
//! and `backward` differentiates that through both gradient graphs to the weights. The answer
//! is sin x.
//!
//! Run: `cargo run --release --example pinn [-- --quick] [--out DIR]`.

mod common;

use std::f64::consts::PI;
use std::time::Instant;

use tapegrad::autodiff::{Tape, Var};
use tapegrad::nn::{self, Activation, Bound, Model, Network, Optimizer, OptimizerKind};
use tapegrad::rand::{SeedableRng, rngs::StdRng};
use tapegrad::tensor::Tensor;

/// u, u' and u'' of the network at the points `x` (`[n, 1]`), as vars of the tape.
fn derivatives<'t>(
    net: &Network<f64>,
    bound: &Bound<'t, f64>,
    tape: &'t Tape<f64>,
    x: &Tensor<f64>,
) -> nn::Result<[Var<'t, f64>; 3]> {
    let xv = tape.var(x.clone());
    let u = net.forward(bound, xv)?;
    // Each u_i depends on x_i alone, so the gradient of the sum is u'(x_i) row by row.
    let du = tape.grad(u.sum(), &[xv])?[0];
    let d2u = tape.grad(du.sum(), &[xv])?[0];
    Ok([u, du, d2u])
}

/// The residual loss: mean (u'' + u)^2 at the collocation points, plus u(0)^2 and
/// (u'(0) - 1)^2.
fn loss<'t>(
    net: &Network<f64>,
    bound: &Bound<'t, f64>,
    tape: &'t Tape<f64>,
    x: &Tensor<f64>,
) -> nn::Result<Var<'t, f64>> {
    let [u, _, d2u] = derivatives(net, bound, tape, x)?;
    let residual = d2u.add(u)?.square().mean();
    let [u0, du0, _] = derivatives(net, bound, tape, &Tensor::zeros(&[1, 1]))?;
    let start = u0.sum().square().add(du0.sum().add_scalar(-1.0).square())?;
    Ok(residual.add(start)?)
}

fn main() -> common::Res {
    let out = common::out_dir()?;
    let quick = common::quick();
    let mut rng = StdRng::seed_from_u64(0);
    let mut net = Network::<f64>::mlp_with(
        &[1, 32, 32, 1],
        Activation::Tanh,
        Activation::Identity,
        &mut rng,
    )?;
    let n = 128;
    let xs = Tensor::from_fn(&[n, 1], |i| 2.0 * PI * i as f64 / (n - 1) as f64);
    let steps = if quick { 200 } else { 12_000 };
    let mut opt = Optimizer::new(OptimizerKind::adam())?;
    let mut tape = Tape::new();
    println!(
        "u'' = -u on [0, 2 pi], u(0) = 0, u'(0) = 1; {} collocation points; network {} \
         parameters; Adam, {steps} steps\n",
        n,
        net.num_parameters()
    );
    println!(
        "{:>6} {:>12} {:>14} {:>8}",
        "step", "loss", "max |u - sin|", "seconds"
    );
    let grid = Tensor::from_fn(&[1001, 1], |i| 2.0 * PI * i as f64 / 1000.0);
    let max_error = |net: &Network<f64>| -> nn::Result<f64> {
        let u = net.predict(&grid)?;
        Ok(u.as_slice()
            .iter()
            .zip(grid.as_slice())
            .map(|(u, x)| (u - x.sin()).abs())
            .fold(0.0, f64::max))
    };
    let start = Instant::now();
    let mut history = Vec::new();
    for step in 1..=steps {
        // Learning rate 3e-3, cosine-annealed towards 1e-5.
        let t = step as f64 / steps as f64;
        let lr = 1e-5 + 0.5 * (3e-3 - 1e-5) * (1.0 + (PI * t).cos());
        let (value, grads) = {
            let bound = net.bind(&tape);
            let l = loss(&net, &bound, &tape, &xs)?;
            (l.item()?, bound.backward(l)?)
        };
        tape.clear();
        opt.step(&mut net.params, &grads, lr)?;
        if step % (steps / 10).max(1) == 0 || step == 1 {
            let e = max_error(&net)?;
            history.push((step as f64, value.log10(), e.log10()));
            println!(
                "{step:>6} {value:>12.3e} {e:>14.3e} {:>8.1}",
                start.elapsed().as_secs_f64()
            );
        }
    }
    let e = max_error(&net)?;
    println!("\nlargest error against sin x on 1,001 points of [0, 2 pi]: {e:.2e}");

    // The solution, sin and the residual over the interval.
    let bound_tape = Tape::new();
    let bound = net.bind(&bound_tape);
    let [u, _, d2u] = derivatives(&net, &bound, &bound_tape, &grid)?;
    let (u, d2u) = (u.value(), d2u.value());
    let series = |name: &str, points, c, dashed| common::Series {
        dashed,
        ..common::Series::line(name, points, common::color(c))
    };
    let xsv = grid.as_slice();
    let path = out.join("pinn.svg");
    common::line_chart(
        &path,
        "u'' = -u, u(0) = 0, u'(0) = 1: the network against sin x",
        "x",
        "value",
        &[
            series(
                "network u(x)",
                xsv.iter()
                    .zip(u.as_slice())
                    .map(|(&x, &v)| (x, v))
                    .collect(),
                0,
                false,
            ),
            series(
                "sin x",
                xsv.iter().map(|&x| (x, x.sin())).collect(),
                1,
                true,
            ),
            series(
                "residual u'' + u (x 100)",
                xsv.iter()
                    .zip(u.as_slice().iter().zip(d2u.as_slice()))
                    .map(|(&x, (&a, &b))| (x, 100.0 * (a + b)))
                    .collect(),
                2,
                false,
            ),
        ],
    )?;
    let path2 = out.join("pinn_training.svg");
    common::line_chart(
        &path2,
        "training: log10 of the loss and of the largest error",
        "step",
        "log10",
        &[
            series(
                "loss",
                history.iter().map(|h| (h.0, h.1)).collect(),
                0,
                false,
            ),
            series(
                "max |u - sin|",
                history.iter().map(|h| (h.0, h.2)).collect(),
                3,
                false,
            ),
        ],
    )?;
    println!("pictures: {} and {}", path.display(), path2.display());
    if !quick && e > 1e-2 {
        return Err(format!("largest error {e:.2e} is above 1e-2").into());
    }
    Ok(())
}
