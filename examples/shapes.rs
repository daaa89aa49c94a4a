//! Shapes through a layer: 10 samples with 3 features times a 3 x 7 weight matrix give a
//! 10 x 7 matrix, 7 engineered features per sample. Printed through the tape's trace, first for
//! the bare math, then for the same layer as a node of a network.
//!
//! Run: `cargo run --example shapes`

use tapegrad::nn::Network;
use tapegrad::prelude::*;
use tapegrad::rand::{SeedableRng, rngs::StdRng};

fn main() -> Result<(), tapegrad::Error> {
    let mut rng = StdRng::seed_from_u64(0);

    println!("1. One hidden layer by hand: h = sigmoid(x W + b), then y = sigmoid(h v + c).\n");
    let tape = Tape::<f32>::new();
    let x = tape
        .constant(Tensor::rand_uniform(&[10, 3], -1.0, 1.0, &mut rng))
        .named("x: 10 samples x 3 features");
    let w = tape
        .var(Tensor::randn(&[3, 7], 0.0, 0.5, &mut rng))
        .named("W: 3 in x 7 out");
    let b = tape.var(Tensor::zeros(&[7])).named("b: one bias per unit");
    let xw = x.matmul(w)?.named("x W: [10, 3] x [3, 7]");
    let z = xw.add(b)?.named("+ b, broadcast over the 10 rows");
    let h = z.sigmoid().named("h: 7 features per sample");
    let v = tape
        .var(Tensor::randn(&[7, 1], 0.0, 0.5, &mut rng))
        .named("v: 7 in x 1 out");
    let c = tape.var(Tensor::zeros(&[1])).named("c");
    let y = h
        .matmul(v)?
        .add(c)?
        .sigmoid()
        .named("y: one probability per sample");
    let loss = y.mean().named("a stand-in loss");
    let grads = tape.backward(loss)?;
    println!("{}", tape.trace_with(&grads));
    println!(
        "x W has shape {:?}: each of the 10 samples now has 7 coordinates, one per hidden",
        xw.shape().as_slice()
    );
    println!(
        "unit. dW has W's shape {:?} and db has b's shape {:?}: the gradient of the",
        grads[w].shape(),
        grads[b].shape()
    );
    println!("broadcast bias is summed over the 10 rows.\n");

    println!("2. The same shapes as a network: Network::mlp(&[3, 7, 1]).\n");
    let net = Network::<f32>::mlp(&[3, 7, 1], &mut rng);
    println!("{net}\n");
    let tape = Tape::<f32>::new();
    let x = tape
        .constant(Tensor::rand_uniform(&[10, 3], -1.0, 1.0, &mut rng))
        .named("x");
    let out = net.forward_bound(&net.bind(&tape), x)?.output()?;
    println!("{}", tape.trace());
    println!("output shape {:?}", out.shape().as_slice());
    Ok(())
}
