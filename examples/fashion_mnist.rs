//! Fashion-MNIST end to end: softmax regression (one layer node, multinomial logistic
//! regression) and a 784-256-10 sigmoid network, with test accuracy, wall time and samples per
//! second for both.
//!
//! The data comes from Debian's `dataset-fashion-mnist` package
//! (`apt-get install dataset-fashion-mnist`, files in `/usr/share/datasets/fashion-mnist/`).
//!
//! Run: `cargo run --release --example fashion_mnist [-- --data DIR] [--epochs N] [--subset N]
//! [--batch N] [--lr X]` (defaults: 20 epochs, batch 256, Adam lr 3e-3; `--subset N` trains on
//! the first N training images; `--quick` is one epoch on 2,000).

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tapegrad::nn::{self, Dataset, Model, Network, OptimizerKind, TrainConfig};
use tapegrad::rand::{SeedableRng, rngs::StdRng};

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

fn run(
    name: &str,
    net: &mut Network<f32>,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
    config: &TrainConfig,
    rng: &mut StdRng,
) -> Result<(f64, f64, f64), tapegrad::Error> {
    let bar = ProgressBar::new(config.epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>22} [{bar:30}] epoch {pos}/{len} {msg} ({elapsed})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    let start = Instant::now();
    let report = nn::train_with(net, train, config, rng, |s, _| {
        bar.set_message(format!(
            "loss {:.4} train acc {:.4}",
            s.loss,
            s.accuracy.unwrap_or(f64::NAN)
        ));
        bar.inc(1);
    })?;
    let seconds = start.elapsed().as_secs_f64();
    bar.finish();
    Ok((net.accuracy(test)?, seconds, report.samples_per_second))
}

fn main() -> Result<(), tapegrad::Error> {
    let dir = arg("--data").unwrap_or_else(|| nn::data::FASHION_MNIST_DIR.to_string());
    let quick = std::env::args().any(|a| a == "--quick");
    let (train, test) = match nn::data::fashion_mnist::<f32>(&dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let subset: Option<usize> = arg("--subset")
        .map(|s| s.parse().expect("--subset takes a number"))
        .or(quick.then_some(2000));
    let train = match subset {
        Some(n) => train.subset(&(0..n.min(train.len())).collect::<Vec<_>>())?,
        None => train,
    };
    let epochs: usize = arg("--epochs")
        .map(|s| s.parse().expect("--epochs takes a number"))
        .unwrap_or(if quick { 1 } else { 20 });
    let mut rng = StdRng::seed_from_u64(0);
    let softmax_config = TrainConfig {
        epochs,
        batch_size: arg("--batch").map_or(256, |s| s.parse().expect("--batch takes a number")),
        learning_rate: arg("--lr").map_or(3e-3, |s| s.parse().expect("--lr takes a number")),
        optimizer: OptimizerKind::adam(),
        ..Default::default()
    };
    let mlp_config = softmax_config.clone();
    println!(
        "Fashion-MNIST: {} training and {} test images of 784 pixels, {epochs} epochs, batch {}, \
         Adam lr {}.\n",
        train.len(),
        test.len(),
        softmax_config.batch_size,
        softmax_config.learning_rate
    );
    let mut softmax = Network::softmax_regression(784, 10, &mut rng);
    let a = run(
        "softmax regression",
        &mut softmax,
        &train,
        &test,
        &softmax_config,
        &mut rng,
    )?;
    let mut mlp = Network::mlp(&[784, 256, 10], &mut rng);
    let b = run(
        "784-256-10 sigmoid",
        &mut mlp,
        &train,
        &test,
        &mlp_config,
        &mut rng,
    )?;
    println!("\n| model | params | test accuracy | training time | samples/s |");
    println!("|---|---:|---:|---:|---:|");
    for (name, net, (acc, secs, sps)) in [
        ("softmax regression", &softmax, a),
        ("784-256-10 sigmoid", &mlp, b),
    ] {
        println!(
            "| {name} | {} | {acc:.4} | {secs:.1} s | {sps:.0} |",
            net.num_parameters()
        );
    }
    println!(
        "\nThreads for large products: {} (TAPEGRAD_NUM_THREADS; default: all cores).",
        tapegrad::tensor::num_threads()
    );
    Ok(())
}
