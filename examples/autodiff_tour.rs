//! A tour of the tape: a scalar expression and a small tensor expression, their values,
//! gradients and traces, and a Graphviz drawing of each.
//!
//! Run: `cargo run --example autodiff_tour -- --out target/tapegrad-plots`
//! Render a drawing: `dot -Tsvg target/tapegrad-plots/tour_scalar.dot -o tour_scalar.svg`

use std::path::PathBuf;

use tapegrad::prelude::*;

fn out_dir() -> PathBuf {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--out"
            && let Some(dir) = args.next()
        {
            return PathBuf::from(dir);
        }
    }
    PathBuf::from("target/tapegrad-plots")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = out_dir();
    std::fs::create_dir_all(&out)?;

    // 1. A scalar expression: c = tanh(a b + a).
    let tape = Tape::<f64>::new();
    let a = tape.var(Tensor::scalar(2.0)).named("a");
    let b = tape.var(Tensor::scalar(-3.0)).named("b");
    let c = (a * b + a).tanh().named("c");
    let grads = tape.backward(c)?;
    println!("Scalar expression c = tanh(a * b + a) at a = 2, b = -3");
    println!("  c     = {:.6}", c.item()?);
    println!("  dc/da = {:.6}   (= (1 - c^2) (b + 1))", grads[a].item()?);
    println!("  dc/db = {:.6}   (= (1 - c^2) a)", grads[b].item()?);
    println!("\nThe tape (Wengert list), with gradients after backward:\n");
    println!("{}", tape.trace_with(&grads));
    let path = out.join("tour_scalar.dot");
    std::fs::write(&path, tape.to_dot_with(&grads))?;
    println!("wrote {}", path.display());

    // 2. A small tensor expression: one sigmoid layer and a squared error, 4 samples x 3 features.
    let tape = Tape::<f64>::new();
    let x = tape.constant(Tensor::from_vec(
        vec![0.0, 1.0, 2.0, 1.0, 0.0, -1.0, 0.5, 0.5, 0.5, -2.0, 1.0, 0.0],
        &[4, 3],
    )?);
    let x = x.named("x");
    let w = tape
        .var(Tensor::from_vec(
            vec![0.1, -0.2, 0.3, 0.4, -0.5, 0.6],
            &[3, 2],
        )?)
        .named("w");
    let bias = tape.var(Tensor::from_vec(vec![0.0, 0.1], &[2])?).named("b");
    let y = tape.constant(Tensor::from_vec(
        vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0],
        &[4, 2],
    )?);
    let h = x
        .matmul(w)?
        .named("xw")
        .add(bias)?
        .named("z")
        .sigmoid()
        .named("h");
    let loss = h.mse(y.named("y"))?.named("loss");
    let grads = tape.backward(loss)?;
    println!("\nTensor expression loss = mse(sigmoid(x w + b), y): x [4, 3], w [3, 2], b [2]");
    println!("  loss = {:.6}", loss.item()?);
    println!("  dloss/dw = {}", grads[w]);
    println!("  dloss/db = {}", grads[bias]);
    println!("\n{}", tape.trace_with(&grads));
    let path = out.join("tour_tensor.dot");
    std::fs::write(&path, tape.to_dot_with(&grads))?;
    println!("wrote {}", path.display());
    Ok(())
}
