//! The main job: *if each neuron is basically a logistic regression, why is a multi-layer
//! network better?* Trains logistic regression (a one-node network) and a network with one
//! hidden sigmoid layer side by side on data that no line separates, and on real data that a
//! line nearly does, and prints test accuracy, parameter counts and training time.
//!
//! Run: `cargo run --release --example why_layers [-- --out DIR]`; for each 2-D dataset it also
//! writes a picture of both decision boundaries to `DIR` (default `target/tapegrad-plots/`).

mod common;

use std::time::Instant;

use tapegrad::nn::boundary::{bounds, decision_grid};
use tapegrad::nn::{self, Dataset, Model, Network, OptimizerKind, Standardizer, TrainConfig};
use tapegrad::rand::{SeedableRng, rngs::StdRng};

const SEED: u64 = 0;
const HIDDEN: usize = 32;

struct Row {
    name: String,
    n: usize,
    logreg: (f64, usize, f64),
    mlp: (f64, usize, f64),
}

fn fit(
    net: &mut Network<f32>,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
    config: &TrainConfig,
    rng: &mut StdRng,
) -> common::Res<(f64, usize, f64)> {
    let start = Instant::now();
    nn::train(net, train, config, rng)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((net.accuracy(test)?, net.num_parameters(), seconds))
}

fn main() -> common::Res {
    let out = common::out_dir()?;
    let quick = common::quick();
    let mut rng = StdRng::seed_from_u64(SEED);
    let datasets: Vec<(String, Dataset<f32>)> = vec![
        ("xor (noise 0.3)".into(), nn::data::xor(400, 0.3, &mut rng)),
        (
            "circles (noise 0.1)".into(),
            nn::data::circles(400, 0.1, &mut rng),
        ),
        (
            "moons (noise 0.2)".into(),
            nn::data::moons(400, 0.2, &mut rng),
        ),
        (
            "spirals (noise 0.2)".into(),
            nn::data::spirals(400, 0.2, &mut rng),
        ),
        ("breast cancer".into(), nn::data::breast_cancer()),
    ];
    let config = TrainConfig {
        epochs: if quick { 20 } else { 2000 },
        batch_size: 32,
        learning_rate: 0.03,
        optimizer: OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-4,
        },
        ..Default::default()
    };
    // Logistic regression is convex: plain settings converge, and a little L2 (as
    // scikit-learn's default C = 1 adds) keeps it from chasing outliers on breast cancer.
    let logreg_config = TrainConfig {
        epochs: if quick { 20 } else { 300 },
        batch_size: 32,
        learning_rate: 0.1,
        optimizer: OptimizerKind::Sgd {
            momentum: 0.9,
            weight_decay: 1e-3,
            nesterov: false,
        },
        ..Default::default()
    };
    let total = Instant::now();
    let mut rows = Vec::new();
    let mut pictures = Vec::new();
    for (name, data) in datasets {
        let (train, test) = nn::data::train_test_split(&data, 0.2, &mut rng)?;
        let scaler = Standardizer::fit(&train.x)?;
        let (train, test) = (
            scaler.transform_dataset(&train)?,
            scaler.transform_dataset(&test)?,
        );
        let d = train.num_features();
        let mut logreg = Network::logistic_regression(d, &mut rng);
        let mut mlp = Network::mlp(&[d, HIDDEN, 1], &mut rng);
        let logreg_result = fit(&mut logreg, &train, &test, &logreg_config, &mut rng)?;
        let mlp_result = fit(&mut mlp, &train, &test, &config, &mut rng)?;
        if d == 2 {
            let everything = scaler.transform_dataset(&data)?;
            let (xr, yr) = bounds(&everything.x, 0.3)?;
            let cells = if quick { 10 } else { 90 };
            let panels = [
                (
                    format!(
                        "{name}: logistic regression, test acc. {:.3}",
                        logreg_result.0
                    ),
                    decision_grid(&logreg, xr, yr, (cells, cells))?,
                ),
                (
                    format!(
                        "{name}: {HIDDEN} hidden units, test acc. {:.3}",
                        mlp_result.0
                    ),
                    decision_grid(&mlp, xr, yr, (cells, cells))?,
                ),
            ];
            let file = format!(
                "why_layers_{}.svg",
                name.split(' ').next().unwrap_or("data")
            );
            let path = out.join(file);
            common::boundary_panels(&path, &panels, &everything)?;
            pictures.push(path);
        }
        rows.push(Row {
            name,
            n: data.len(),
            logreg: logreg_result,
            mlp: mlp_result,
        });
    }
    println!(
        "Test accuracy on an 80/20 stratified split (seed {SEED}), features standardized on the"
    );
    println!(
        "training part. Logistic regression: one sigmoid neuron, SGD momentum 0.9, lr 0.1, L2 1e-3,"
    );
    println!(
        "300 epochs. One hidden layer: [d, {HIDDEN}, 1] sigmoid units, Adam lr 0.03, L2 1e-4, 2000 epochs."
    );
    println!("Batches of 32.\n");
    println!(
        "| dataset | n | logistic regression | params | time | one hidden layer | params | time |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.3} | {} | {:.2} s | {:.3} | {} | {:.2} s |",
            r.name, r.n, r.logreg.0, r.logreg.1, r.logreg.2, r.mlp.0, r.mlp.1, r.mlp.2
        );
    }
    println!("\ntotal {:.1} s", total.elapsed().as_secs_f64());
    println!("\nDecision boundaries (test accuracy in each title):");
    for p in pictures {
        println!("  {}", p.display());
    }
    Ok(())
}
