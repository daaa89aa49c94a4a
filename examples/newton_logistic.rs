//! Newton's method on the one-node network: logistic regression on the breast cancer data
//! (standardized, L2 1e-3 on the weights), each step solving with the exact Hessian the tape
//! computes (`autodiff::hessian`, a gradient graph differentiated again). Beside it, SGD on the
//! same loss, epoch by epoch. Then the same Newton run without the penalty: the data are
//! linearly separable, so the loss has no minimum and the weights grow without bound.
//!
//! Run: `cargo run --release --example newton_logistic [-- --out DIR]`.

mod common;

use tapegrad::autodiff::{Tape, Var, hessian};
use tapegrad::nn::{self, Standardizer};
use tapegrad::rand::seq::SliceRandom;
use tapegrad::rand::{SeedableRng, rngs::StdRng};
use tapegrad::tensor::Tensor;

const LAMBDA: f64 = 1e-3;

/// Mean binary cross-entropy of `X w` plus `lambda / 2` times the squared norm of the weights
/// (the last entry, the bias, is not penalized).
fn loss<'t>(
    tape: &'t Tape<f64>,
    x: &Tensor<f64>,
    y: &Tensor<f64>,
    w: Var<'t, f64>,
    lambda: f64,
) -> Result<Var<'t, f64>, tapegrad::autodiff::AutodiffError> {
    let d = x.shape()[1];
    let z = tape.constant(x.clone()).matmul(w.reshape(&[d, 1])?)?;
    let bce = z.binary_cross_entropy_with_logits(tape.constant(y.clone()))?;
    let penalty = w
        .narrow(0, 0, d - 1)?
        .square()
        .sum()
        .mul_scalar(lambda / 2.0);
    bce.add(penalty)
}

/// Loss and gradient at `w`.
fn value_and_grad(
    x: &Tensor<f64>,
    y: &Tensor<f64>,
    w: &Tensor<f64>,
    lambda: f64,
) -> (f64, Tensor<f64>) {
    let tape = Tape::new();
    let wv = tape.var(w.clone());
    let l = loss(&tape, x, y, wv, lambda).expect("shapes fit");
    let g = tape.backward(l).expect("scalar")[wv].clone();
    (l.item().expect("scalar"), g)
}

/// Solves `H d = g` by Gaussian elimination with partial pivoting (31 unknowns).
fn solve(h: &Tensor<f64>, g: &Tensor<f64>) -> Tensor<f64> {
    let n = g.len();
    let mut a: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let mut row = h.as_slice()[i * n..(i + 1) * n].to_vec();
            row.push(g.as_slice()[i]);
            row
        })
        .collect();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .expect("rows left");
        a.swap(c, p);
        let (top, below) = a.split_at_mut(c + 1);
        let pivot = &top[c];
        for row in below {
            let f = row[c] / pivot[c];
            for (v, &p) in row[c..].iter_mut().zip(&pivot[c..]) {
                *v -= f * p;
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        x[r] = (a[r][n] - s) / a[r][r];
    }
    Tensor::from_vec(x, &[n]).expect("n elements")
}

fn norm(t: &Tensor<f64>) -> f64 {
    t.as_slice().iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// Newton's method from zero: one row per iteration (loss, gradient norm, weight norm).
fn newton(
    x: &Tensor<f64>,
    y: &Tensor<f64>,
    lambda: f64,
    iterations: usize,
    tol: f64,
) -> Vec<(usize, f64, f64, f64)> {
    let d = x.shape()[1];
    let mut w = Tensor::zeros(&[d]);
    let mut rows = Vec::new();
    for it in 0..=iterations {
        let (l, g) = value_and_grad(x, y, &w, lambda);
        rows.push((
            it,
            l,
            norm(&g),
            norm(&w.narrow(0, 0, d - 1).expect("d - 1 weights")),
        ));
        if norm(&g) < tol || it == iterations {
            break;
        }
        let h = hessian(&w, |tape, w| loss(tape, x, y, w, lambda)).expect("shapes fit");
        let step = solve(&h, &g);
        w = w.sub(&step).expect("same shape");
    }
    rows
}

fn main() -> common::Res {
    let out = common::out_dir()?;
    let data = nn::data::breast_cancer::<f64>();
    let xs = Standardizer::fit(&data.x)?.transform(&data.x)?;
    let n = xs.shape()[0];
    let x = Tensor::concat(&[&xs, &Tensor::ones(&[n, 1])], 1)?;
    let labels = data.labels().expect("classes").to_vec();
    let y = Tensor::from_fn(&[n, 1], |i| labels[i] as f64);
    println!(
        "logistic regression (one sigmoid neuron) on breast cancer: {n} samples, 30 standardized \
         features and a bias; loss = mean BCE + {LAMBDA:e}/2 |w|^2\n"
    );

    println!("Newton's method, exact Hessian from the tape (31 x 31):");
    println!(
        "{:>4} {:>20} {:>12} {:>10}",
        "iter", "loss", "|grad|", "|w|"
    );
    let rows = newton(&x, &y, LAMBDA, 20, 1e-9);
    for &(it, l, g, w) in &rows {
        println!("{it:>4} {l:>20.15} {g:>12.3e} {w:>10.4}");
    }
    let (last_it, best, last_g, _) = *rows.last().expect("one row");
    println!("gradient norm {last_g:.1e} after {last_it} Newton iterations\n");

    // SGD on the same loss: mini-batches of 32, learning rate 0.1, one row per epoch.
    let d = x.shape()[1];
    let mut w = Tensor::zeros(&[d]);
    let mut rng = StdRng::seed_from_u64(0);
    let mut order: Vec<usize> = (0..n).collect();
    let mut sgd = vec![(0, value_and_grad(&x, &y, &w, LAMBDA).0)];
    for epoch in 1..=100 {
        order.shuffle(&mut rng);
        for rows in order.chunks(32) {
            let (xb, yb) = (x.select_rows(rows)?, y.select_rows(rows)?);
            let (_, g) = value_and_grad(&xb, &yb, &w, LAMBDA);
            w = w.sub(&g.mul_scalar(0.1))?;
        }
        sgd.push((epoch, value_and_grad(&x, &y, &w, LAMBDA).0));
    }
    println!("SGD (batch 32, lr 0.1) on the same loss:");
    println!("{:>6} {:>20} {:>16}", "epoch", "loss", "above Newton's");
    for &(e, l) in sgd
        .iter()
        .filter(|(e, _)| [1, 5, 10, 20, 50, 100].contains(e))
    {
        println!("{e:>6} {l:>20.15} {:>16.3e}", l - best);
    }

    println!("\nthe same Newton run without the penalty (the classes are linearly separable):");
    println!(
        "{:>4} {:>20} {:>12} {:>12}",
        "iter", "loss", "|grad|", "|w|"
    );
    let free = newton(&x, &y, 0.0, 25, 0.0);
    for &(it, l, g, w) in &free {
        println!("{it:>4} {l:>20.3e} {g:>12.3e} {w:>12.4e}");
    }
    let grown = free.last().expect("rows").3;
    let past = free.iter().find(|r| r.3 > 1e4).map_or(0, |r| r.0);
    let k = free.len() - 1;
    let per = (free[k].3 - free[k - 5].3) / 5.0;
    println!(
        "no minimum: the loss keeps falling towards 0 while |w| grows by about {per:.0} per \
         iteration, past 1e4 at iteration {past} and {grown:.3e} at iteration {k}"
    );

    let series = |name: &str, points, c| common::Series::line(name, points, common::color(c));
    let path = out.join("newton_logistic.svg");
    common::line_chart(
        &path,
        "logistic regression, L2 1e-3: log10(loss - Newton's final loss)",
        "Newton iteration / SGD epoch",
        "log10(loss - minimum)",
        &[
            series(
                "Newton (exact Hessian)",
                rows.iter()
                    .take_while(|r| r.1 - best > 1e-16)
                    .map(|r| (r.0 as f64, (r.1 - best).log10()))
                    .collect(),
                0,
            ),
            series(
                "SGD, per epoch",
                sgd.iter()
                    .filter(|r| r.0 <= 20)
                    .map(|r| (r.0 as f64, (r.1 - best).max(1e-16).log10()))
                    .collect(),
                1,
            ),
        ],
    )?;
    let path2 = out.join("newton_unpenalized.svg");
    common::line_chart(
        &path2,
        "without the penalty: the weights grow without bound",
        "Newton iteration",
        "log10 |w|",
        &[series(
            "log10 |w|",
            free.iter()
                .skip(1)
                .map(|r| (r.0 as f64, r.3.log10()))
                .collect(),
            3,
        )],
    )?;
    println!("pictures: {} and {}", path.display(), path2.display());
    if last_g >= 1e-9 || last_it > 10 {
        return Err(
            format!("Newton stopped at |grad| {last_g:e} after {last_it} iterations").into(),
        );
    }
    Ok(())
}
