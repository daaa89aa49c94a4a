//! A convolutional network written as user code on `nn::Model` (conv 3x3 -> relu -> max pool
//! -> linear), trained by `nn::train` on the bundled 8x8 digits: prints a table per epoch,
//! draws the learned filters and the curves, and checks that a run resumed from its mid-way
//! checkpoint ends bit for bit where the uninterrupted run does.
//!
//! Run: `cargo run --release --example conv_digits [-- --fashion-mnist] [--quick] [--out DIR]`.
//! With `--fashion-mnist` it trains on Fashion-MNIST (28x28, from
//! `/usr/share/datasets/fashion-mnist`) instead.

mod common;
#[path = "common/models.rs"]
mod models;

use std::time::Instant;

use plotters::prelude::*;
use tapegrad::nn::{self, Dataset, Model, OptimizerKind, TrainConfig};
use tapegrad::rand::{SeedableRng, rngs::StdRng};
use tapegrad::tensor::Tensor;

use models::ConvNet;

fn main() -> common::Res {
    let out = common::out_dir()?;
    let quick = common::quick();
    let fashion = std::env::args().any(|a| a == "--fashion-mnist");
    let mut rng = StdRng::seed_from_u64(0);
    let (name, side, channels, train, test, epochs, lr) = if fashion {
        let (mut train, test) = nn::data::fashion_mnist::<f32>(nn::data::FASHION_MNIST_DIR)?;
        if quick {
            train = train.subset(&(0..2000).collect::<Vec<_>>())?;
        }
        let epochs: usize = if quick { 1 } else { 6 };
        ("fashion-mnist", 28, 32, train, test, epochs, 1e-3)
    } else {
        let digits = nn::data::digits::<f32>();
        // Pixels are 0..16: scale them to [0, 1].
        let scaled = Dataset {
            x: digits.x.mul_scalar(1.0 / 16.0),
            ..digits
        };
        let (train, test) = nn::data::train_test_split(&scaled, 0.2, &mut rng)?;
        let epochs = if quick { 4 } else { 30 };
        ("digits", 8, 16, train, test, epochs, 5e-3)
    };
    let mut model = ConvNet::new(side, channels, 10, &mut rng);
    println!(
        "{name}: {} training and {} test images of {side}x{side}; conv {channels}x3x3 -> relu -> \
         max pool 2x2 -> linear 10, {} parameters\n",
        train.len(),
        test.len(),
        model.num_parameters()
    );
    let mid = epochs.div_ceil(2);
    let ckpt = out.join(format!("conv_{name}.safetensors"));
    let mid_ckpt = out.join(format!("conv_{name}_mid.safetensors"));
    let config = TrainConfig {
        epochs,
        batch_size: 64,
        learning_rate: lr,
        optimizer: OptimizerKind::adam(),
        checkpoint_every: mid,
        checkpoint_path: Some(ckpt.clone()),
        ..Default::default()
    };
    println!(
        "{:>5} {:>10} {:>10} {:>10} {:>8}",
        "epoch", "loss", "train acc", "test acc", "seconds"
    );
    let mut curves = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut failure = None;
    nn::train_with(&mut model, &train, &config, &mut rng, |s, m| {
        let acc = m.accuracy(&test).unwrap_or(f64::NAN);
        println!(
            "{:>5} {:>10.5} {:>10.4} {:>10.4} {:>8.2}",
            s.epoch,
            s.loss,
            s.accuracy.unwrap_or(f64::NAN),
            acc,
            s.seconds
        );
        curves.0.push((s.epoch as f64, s.loss));
        curves.1.push((s.epoch as f64, acc));
        if s.epoch == mid
            && let Err(e) = std::fs::copy(&ckpt, &mid_ckpt)
        {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    let seconds = start.elapsed().as_secs_f64();
    let accuracy = model.accuracy(&test)?;
    println!("\ntest accuracy {accuracy:.4} after {epochs} epochs in {seconds:.1} s");

    // Resume from the mid-way checkpoint in a fresh model: the same bits at the end.
    let mut resumed = ConvNet::new(side, channels, 10, &mut StdRng::seed_from_u64(99));
    let same = models::resumes_to(&model, &mut resumed, &mid_ckpt, &train, &config)?;
    println!(
        "resumed from the epoch-{mid} checkpoint: final parameters {} the uninterrupted run's",
        if same {
            "bit-identical to"
        } else {
            "DIFFERENT from"
        }
    );
    if !same {
        return Err("the resumed run differs".into());
    }

    let series = |name: &str, points, c| common::Series::line(name, points, common::color(c));
    let curves_path = out.join(format!("conv_{name}_curves.svg"));
    common::line_chart(
        &curves_path,
        &format!("conv net on {name}"),
        "epoch",
        "loss / accuracy",
        &[
            series("training loss", curves.0, 0),
            series("test accuracy", curves.1, 1),
        ],
    )?;
    let filters_path = out.join(format!("conv_{name}_filters.svg"));
    draw_filters(&filters_path, &model.params()[model.params().ids()[0]])?;
    println!(
        "pictures: {} and {}",
        curves_path.display(),
        filters_path.display()
    );
    if !quick {
        let floor = if fashion { 0.90 } else { 0.97 };
        if accuracy < floor {
            return Err(format!("test accuracy {accuracy:.4} is below {floor}").into());
        }
    }
    Ok(())
}

/// The learned 3x3 filters `[channels, 1, 3, 3]` as a row of small heat maps (blue negative,
/// red positive).
fn draw_filters(path: &std::path::Path, w: &Tensor<f32>) -> common::Res {
    let c = w.shape()[0];
    let cell = 14;
    let pad = 8;
    let width = (c * (3 * cell + pad) + pad) as u32;
    let root = SVGBackend::new(path, (width, (3 * cell + 2 * pad + 16) as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = w
        .as_slice()
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1e-6);
    for k in 0..c {
        for i in 0..3 {
            for j in 0..3 {
                let v = w.as_slice()[k * 9 + i * 3 + j] / max;
                let shade = |t: f32| (255.0 * (1.0 - t.abs())) as u8;
                let color = if v >= 0.0 {
                    RGBColor(255, shade(v), shade(v))
                } else {
                    RGBColor(shade(v), shade(v), 255)
                };
                let x0 = (pad + k * (3 * cell + pad) + j * cell) as i32;
                let y0 = (pad + 16 + i * cell) as i32;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell as i32, y0 + cell as i32)],
                    color.filled(),
                ))?;
            }
        }
    }
    root.draw(&Text::new(
        "learned 3x3 filters",
        (pad as i32, 2),
        ("sans-serif", 13),
    ))?;
    root.present()?;
    Ok(())
}
