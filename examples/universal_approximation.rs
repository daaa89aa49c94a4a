//! Sums of sigmoids approximate any continuous function (the universal approximation theorem):
//! one hidden sigmoid layer of width 1, 2, 4, 8, 16 and 32 is fitted to sin(3x) on [-pi, pi], to
//! |x| and to a step. The error falls as the layer widens; the fitted function is literally a
//! weighted sum of shifted, stretched sigmoids plus a constant, drawn term by term.
//!
//! Run: `cargo run --release --example universal_approximation [-- --out DIR]`

mod common;

use std::f64::consts::PI;

use tapegrad::nn::{
    self, Activation, Dataset, Init, Network, NodeKind, OptimizerKind, TrainConfig,
};
use tapegrad::prelude::*;
use tapegrad::rand::{SeedableRng, rngs::StdRng};

const WIDTHS: [usize; 6] = [1, 2, 4, 8, 16, 32];

type Target = (&'static str, &'static str, fn(f64) -> f64);

fn targets() -> [Target; 3] {
    [
        ("sin(3x)", "sin", |x| (3.0 * x).sin()),
        ("abs(x)", "abs", |x| x.abs()),
        ("step", "step", |x| if x < 0.0 { 0.0 } else { 1.0 }),
    ]
}

/// A network x -> sigmoid layer of `width` units -> one linear output neuron.
///
/// Each hidden unit sigmoid(w x + b) is a smoothed step at x = -b / w. The units start as steps
/// of random steepness whose centres are spread evenly over [-pi, pi] (b = -w c); with all
/// biases at zero every step would start at x = 0 and the units would first have to walk apart.
fn one_hidden_layer(width: usize, rng: &mut StdRng) -> common::Res<Network<f32>> {
    let mut net = Network::<f32>::new(1);
    let steep = Init::Uniform {
        low: -4.0,
        high: 4.0,
    };
    let h = net.layer_with("h1", &[net.input()], width, Activation::Sigmoid, steep, rng)?;
    let y = net.neuron_with("out", &[h], Activation::Identity, Init::XavierUniform, rng)?;
    net.set_output(y)?;
    let slopes = net.param("h1.weight").expect("named weight").to_vec();
    let bias = Tensor::from_fn(&[width], |j| {
        let centre = -PI + 2.0 * PI * (j as f64 + 0.5) / width as f64;
        -slopes[j] * centre as f32
    });
    net.set_param("h1.bias", bias)?;
    Ok(net)
}

fn samples(f: fn(f64) -> f64, n: usize) -> common::Res<Dataset<f32>> {
    let xs: Vec<f64> = (0..n)
        .map(|i| -PI + 2.0 * PI * i as f64 / (n - 1) as f64)
        .collect();
    let x = Tensor::from_vec(xs.iter().map(|&v| v as f32).collect(), &[n, 1])?;
    let y = Tensor::from_vec(xs.iter().map(|&v| f(v) as f32).collect(), &[n, 1])?;
    Ok(Dataset::regression(x, y)?)
}

fn errors(net: &Network<f32>, data: &Dataset<f32>) -> common::Res<(f64, f64)> {
    let p = net.predict(&data.x)?;
    let nn::Targets::Values(y) = &data.y else {
        unreachable!("regression data")
    };
    let d: Vec<f64> = p
        .as_slice()
        .iter()
        .zip(y.as_slice())
        .map(|(a, b)| (a - b) as f64)
        .collect();
    let max = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mse = d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64;
    Ok((max, mse))
}

fn main() -> common::Res {
    let out = common::out_dir()?;
    let quick = common::quick();
    let epochs = if quick { 100 } else { 4000 };
    let widths: &[usize] = if quick { &[1, 8] } else { &WIDTHS };
    let config = TrainConfig {
        epochs,
        batch_size: 256,
        learning_rate: 0.02,
        optimizer: OptimizerKind::adam(),
        // Full batch: every step sees all 256 points, so there is nothing to shuffle.
        shuffle: false,
        ..Default::default()
    };
    println!(
        "One hidden sigmoid layer, linear output, 256 points on [-pi, pi], mean squared error,"
    );
    println!(
        "full-batch Adam lr 0.02 for {epochs} epochs. Error measured on the same 256 points.\n"
    );
    println!("| function | width | max error | mean squared error |");
    println!("|---|---:|---:|---:|");
    let mut written = Vec::new();
    for (name, tag, f) in targets() {
        let data = samples(f, 256)?;
        let xs: Vec<f64> = data.x.as_slice().iter().map(|&v| v as f64).collect();
        let mut series = vec![common::Series {
            dashed: true,
            ..common::Series::line(
                format!("target {name}"),
                xs.iter().map(|&x| (x, f(x))).collect(),
                RGB_BLACK,
            )
        }];
        let mut fitted = Vec::new();
        for (k, &width) in widths.iter().enumerate() {
            let mut rng = StdRng::seed_from_u64(width as u64);
            let mut net = one_hidden_layer(width, &mut rng)?;
            nn::train(&mut net, &data, &config, &mut rng)?;
            let (max, mse) = errors(&net, &data)?;
            println!("| {name} | {width} | {max:.4} | {mse:.2e} |");
            let p = net.predict(&data.x)?;
            series.push(common::Series::line(
                format!("width {width}"),
                xs.iter()
                    .zip(p.as_slice())
                    .map(|(&x, &y)| (x, y as f64))
                    .collect(),
                common::color(k),
            ));
            fitted.push((width, net));
        }
        let path = out.join(format!("universal_approximation_{tag}.svg"));
        common::line_chart(
            &path,
            &format!("One hidden sigmoid layer fitting {name}, by width"),
            "x",
            "f(x)",
            &series,
        )?;
        written.push(path);
        if tag == "sin" {
            let (width, net) = fitted
                .iter()
                .find(|(w, _)| *w == 8)
                .or(fitted.last())
                .expect("at least one width");
            let path = out.join("universal_approximation_sum_of_sigmoids.svg");
            draw_terms(&path, net, *width, &xs)?;
            written.push(path);
        }
    }
    println!();
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

const RGB_BLACK: plotters::style::RGBColor = plotters::style::RGBColor(0, 0, 0);

/// Draws the fitted function as its parts: each hidden unit's term v_j sigmoid(w_j x + b_j), the
/// output bias, and their sum.
fn draw_terms(path: &std::path::Path, net: &Network<f32>, width: usize, xs: &[f64]) -> common::Res {
    let param = |node: &str| -> (Vec<f64>, Vec<f64>) {
        let id = net.find_node(node).expect("named node");
        match net.node(id).expect("node").kind {
            NodeKind::Layer { weight, bias, .. } | NodeKind::Neuron { weight, bias, .. } => (
                net.params[weight]
                    .as_slice()
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
                net.params[bias]
                    .as_slice()
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
            ),
            _ => unreachable!("a layer or neuron"),
        }
    };
    let (w, b) = param("h1");
    let (v, c) = param("out");
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let mut series = Vec::new();
    for j in 0..width {
        series.push(common::Series::line(
            format!("{:.2} sigmoid({:.2} x + {:.2})", v[j], w[j], b[j]),
            xs.iter()
                .map(|&x| (x, v[j] * sigmoid(w[j] * x + b[j])))
                .collect(),
            common::color(j),
        ));
    }
    series.push(common::Series::line(
        format!("sum of the {width} terms + {:.2}", c[0]),
        xs.iter()
            .map(|&x| {
                let s: f64 = (0..width).map(|j| v[j] * sigmoid(w[j] * x + b[j])).sum();
                (x, s + c[0])
            })
            .collect(),
        RGB_BLACK,
    ));
    series.push(common::Series {
        dashed: true,
        ..common::Series::line(
            "target sin(3x)",
            xs.iter().map(|&x| (x, (3.0 * x).sin())).collect(),
            plotters::style::RGBColor(120, 120, 120),
        )
    });
    common::line_chart(
        path,
        &format!("sin(3x) as a sum of {width} scaled sigmoids (one hidden layer)"),
        "x",
        "value",
        &series,
    )
}
