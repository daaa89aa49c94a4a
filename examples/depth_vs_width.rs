//! One wide hidden layer against two or three narrower ones at (nearly) the same parameter
//! count, on the spirals, over several seeds: how many epochs each needs to reach 95% training
//! accuracy, and the test accuracy it ends with. It reports what it measures, whichever way it
//! comes out.
//!
//! Run: `cargo run --release --example depth_vs_width [-- --out DIR]`

mod common;

use tapegrad::nn::{
    self, Activation, Dataset, Model, Network, OptimizerKind, Standardizer, TrainConfig,
};
use tapegrad::rand::{SeedableRng, rngs::StdRng};

fn main() -> common::Res {
    let out = common::out_dir()?;
    let quick = common::quick();
    let (epochs, seeds) = if quick { (10, 1) } else { (1500, 5) };
    let mut rng = StdRng::seed_from_u64(0);
    let data: Dataset<f32> = nn::data::spirals(400, 0.2, &mut rng);
    let (train, test) = nn::data::train_test_split(&data, 0.2, &mut rng)?;
    let scaler = Standardizer::fit(&train.x)?;
    let (train, test) = (
        scaler.transform_dataset(&train)?,
        scaler.transform_dataset(&test)?,
    );
    let shapes: [(&str, Vec<usize>); 3] = [
        ("1 x 64 (wide)", vec![2, 64, 1]),
        ("2 x 14", vec![2, 14, 14, 1]),
        ("3 x 10", vec![2, 10, 10, 10, 1]),
    ];
    let config = TrainConfig {
        epochs,
        batch_size: 32,
        learning_rate: 0.01,
        optimizer: OptimizerKind::adam(),
        ..Default::default()
    };
    println!(
        "Spirals (400 points, noise 0.2, 80/20 split), Adam lr 0.01, batch 32, {epochs} epochs,"
    );
    println!(
        "{seeds} seeds per shape. 'epochs to 95%': first epoch whose training accuracy reached 0.95.\n"
    );
    for activation in [Activation::Sigmoid, Activation::Tanh] {
        println!("Hidden units: {activation}\n");
        println!(
            "| hidden layers | params | epochs to 95% (per seed) | mean | final test accuracy (per seed) | mean |"
        );
        println!("|---|---:|---|---:|---|---:|");
        let mut curves = Vec::new();
        for (k, (name, sizes)) in shapes.iter().enumerate() {
            let (mut reach, mut finals) = (Vec::new(), Vec::new());
            let mut params = 0;
            let mut mean_curve = vec![0.0; epochs];
            for seed in 0..seeds {
                let mut rng = StdRng::seed_from_u64(100 + seed);
                let mut net = Network::<f32>::try_mlp(sizes, activation, &mut rng)?;
                params = net.num_parameters();
                let mut first = None;
                nn::train_with(&mut net, &train, &config, &mut rng, |s, _| {
                    let acc = s.accuracy.unwrap_or(0.0);
                    mean_curve[s.epoch - 1] += acc / seeds as f64;
                    if first.is_none() && acc >= 0.95 {
                        first = Some(s.epoch);
                    }
                })?;
                reach.push(first);
                finals.push(net.accuracy(&test)?);
            }
            let reached: Vec<usize> = reach.iter().flatten().copied().collect();
            let mean_reach = if reached.len() == reach.len() {
                format!(
                    "{:.0}",
                    reached.iter().sum::<usize>() as f64 / reached.len() as f64
                )
            } else {
                format!("{}/{} never", reach.len() - reached.len(), reach.len())
            };
            println!(
                "| {name} | {params} | {} | {mean_reach} | {} | {:.3} |",
                reach
                    .iter()
                    .map(|r| r.map_or("-".into(), |e| e.to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
                finals
                    .iter()
                    .map(|a| format!("{a:.3}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                finals.iter().sum::<f64>() / finals.len() as f64
            );
            curves.push(common::Series::line(
                format!("{name}, {params} params"),
                mean_curve
                    .iter()
                    .enumerate()
                    .map(|(e, &a)| ((e + 1) as f64, a))
                    .collect(),
                common::color(k),
            ));
        }
        println!();
        let path = out.join(format!("depth_vs_width_{activation}.svg"));
        common::line_chart(
            &path,
            &format!("Spirals, {activation} units: training accuracy (mean of {seeds} seeds)"),
            "epoch",
            "training accuracy",
            &curves,
        )?;
        println!("wrote {}\n", path.display());
    }
    Ok(())
}
