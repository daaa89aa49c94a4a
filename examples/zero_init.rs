//! Why initialization matters: units of one layer see the same inputs and differ only because
//! their weights differ. Start every weight at zero and every hidden unit computes the same
//! thing, receives the same gradient and stays identical through training: the layer behaves
//! like a single unit and the network cannot learn XOR. Xavier initialization breaks the
//! symmetry and it learns.
//!
//! Run: `cargo run --release --example zero_init [-- --out DIR]`

mod common;

use tapegrad::nn::{self, Activation, Dataset, Init, Model, Network, NodeKind, TrainConfig};
use tapegrad::rand::{SeedableRng, rngs::StdRng};

const HIDDEN: usize = 8;

fn network(init: Init, rng: &mut StdRng) -> common::Res<Network<f32>> {
    let mut net = Network::new(2);
    let h = net.layer_with("h1", &[net.input()], HIDDEN, Activation::Sigmoid, init, rng)?;
    let y = net.neuron_with("out", &[h], Activation::Sigmoid, init, rng)?;
    net.set_output(y)?;
    Ok(net)
}

/// The largest difference between any two hidden units' parameters: incoming weights, bias and
/// outgoing weight. Zero means the units are exact copies of each other.
pub fn unit_spread(net: &Network<f32>) -> f32 {
    let params = |name: &str| -> Vec<f32> {
        let id = net.find_node(name).expect("named node");
        match net.node(id).expect("node").kind {
            NodeKind::Layer { weight, bias, .. } | NodeKind::Neuron { weight, bias, .. } => {
                let mut v = net.params[weight].to_vec();
                v.extend(net.params[bias].as_slice());
                v
            }
            _ => unreachable!("a layer or neuron"),
        }
    };
    let hidden = params("h1"); // [2, HIDDEN] row-major, then HIDDEN biases
    let out = params("out"); // HIDDEN weights, then the bias
    let unit = |j: usize| {
        [
            hidden[j],
            hidden[HIDDEN + j],
            hidden[2 * HIDDEN + j],
            out[j],
        ]
    };
    let mut spread = 0.0f32;
    for a in 0..HIDDEN {
        for b in a + 1..HIDDEN {
            for (x, y) in unit(a).iter().zip(unit(b)) {
                spread = spread.max((x - y).abs());
            }
        }
    }
    spread
}

fn main() -> common::Res {
    let out = common::out_dir()?;
    let epochs = if common::quick() { 20 } else { 300 };
    let mut rng = StdRng::seed_from_u64(0);
    let data: Dataset<f32> = nn::data::xor(400, 0.3, &mut rng);
    let config = TrainConfig {
        epochs,
        learning_rate: 0.5,
        ..Default::default()
    };
    println!(
        "A [2, {HIDDEN}, 1] sigmoid network on xor(400, noise 0.3), SGD momentum 0.9, lr 0.5, batch 32.\n"
    );
    println!(
        "| init | epoch | loss | train accuracy | largest difference between two hidden units |"
    );
    println!("|---|---:|---:|---:|---:|");
    let mut curves = Vec::new();
    for (name, init) in [("zeros", Init::Zeros), ("Xavier", Init::XavierUniform)] {
        let mut net = network(init, &mut StdRng::seed_from_u64(1))?;
        let mut curve = Vec::new();
        nn::train_with(
            &mut net,
            &data,
            &config,
            &mut StdRng::seed_from_u64(2),
            |s, net| {
                curve.push((s.epoch as f64, s.loss));
                if s.epoch == 1 || s.epoch % (epochs / 4).max(1) == 0 {
                    println!(
                        "| {name} | {} | {:.4} | {:.3} | {:.3e} |",
                        s.epoch,
                        s.loss,
                        s.accuracy.unwrap_or(f64::NAN),
                        unit_spread(net)
                    );
                }
            },
        )?;
        curves.push(common::Series::line(
            format!(
                "{name} initialization (final accuracy {:.2})",
                net.accuracy(&data)?
            ),
            curve,
            common::color(curves.len() * 3),
        ));
    }
    let path = out.join("zero_init_loss.svg");
    common::line_chart(
        &path,
        "Training loss: all-zero weights stay symmetric, Xavier learns",
        "epoch",
        "binary cross-entropy",
        &curves,
    )?;
    println!(
        "\nUnder zero initialization the hidden units stay exact copies (difference 0 at every"
    );
    println!(
        "epoch), so the layer is one unit repeated: the network is stuck where a single hidden"
    );
    println!(
        "unit gets (at best three of XOR's four blobs, 0.75), while Xavier's random start learns."
    );
    println!("\nwrote {}", path.display());
    Ok(())
}
