//! The claims the example programs make, asserted at small sizes, and every example run to
//! completion in its `--quick` mode.

use std::path::PathBuf;
use std::process::Command;

use tapegrad::nn::{
    self, Activation, Dataset, Init, Network, NodeKind, OptimizerKind, TrainConfig,
};
use tapegrad::prelude::*;
use tapegrad::rand::{SeedableRng, rngs::StdRng};

fn xor4() -> Dataset<f64> {
    let x = Tensor::from_vec(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]).unwrap();
    Dataset::classification(x, vec![0, 1, 1, 0]).unwrap()
}

fn full_batch(epochs: usize, lr: f64, optimizer: OptimizerKind) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 4,
        learning_rate: lr,
        optimizer,
        shuffle: false,
        ..Default::default()
    }
}

#[test]
fn hidden_features_of_an_xor_network_are_linearly_separable() {
    let data = xor4();
    let mut rng = StdRng::seed_from_u64(0);
    let mut net = Network::<f64>::mlp(&[2, 4, 1], &mut rng);
    nn::train(
        &mut net,
        &data,
        &full_batch(2000, 0.05, OptimizerKind::adam()),
        &mut rng,
    )
    .unwrap();
    assert_eq!(net.accuracy(&data).unwrap(), 1.0);
    let h = net
        .activations(&data.x, net.find_node("h1").unwrap())
        .unwrap();
    assert_eq!(h.shape(), &[4, 4]);
    let fit = |d: &Dataset<f64>| {
        let mut rng = StdRng::seed_from_u64(1);
        let mut lr = Network::logistic_regression(d.num_features(), &mut rng);
        nn::train(
            &mut lr,
            d,
            &full_batch(2000, 0.5, OptimizerKind::sgd_momentum(0.9)),
            &mut rng,
        )
        .unwrap();
        lr.accuracy(d).unwrap()
    };
    let hidden = Dataset::classification(h, vec![0, 1, 1, 0]).unwrap();
    assert_eq!(
        fit(&hidden),
        1.0,
        "a line separates XOR in the hidden feature space"
    );
    assert!(
        fit(&data) <= 0.75,
        "no line separates XOR in the input space"
    );
}

#[test]
fn zero_initialized_hidden_units_stay_identical_to_the_last_bit() {
    let mut rng = StdRng::seed_from_u64(0);
    let data: Dataset<f32> = nn::data::xor(200, 0.3, &mut rng);
    let build = |init: Init| {
        let mut rng = StdRng::seed_from_u64(1);
        let mut net = Network::<f32>::new(2);
        let h = net
            .layer_with("h1", &[net.input()], 6, Activation::Sigmoid, init, &mut rng)
            .unwrap();
        let y = net
            .neuron_with("out", &[h], Activation::Sigmoid, init, &mut rng)
            .unwrap();
        net.set_output(y).unwrap();
        net
    };
    let units = |net: &Network<f32>| -> Vec<Vec<u32>> {
        let get = |name: &str| match net.node(net.find_node(name).unwrap()).unwrap().kind {
            NodeKind::Layer { weight, bias, .. } | NodeKind::Neuron { weight, bias, .. } => {
                (net.params[weight].to_vec(), net.params[bias].to_vec())
            }
            _ => unreachable!("a layer or neuron"),
        };
        let ((w, b), (v, _)) = (get("h1"), get("out"));
        (0..6)
            .map(|j| {
                [w[j], w[6 + j], b[j], v[j]]
                    .iter()
                    .map(|x| x.to_bits())
                    .collect()
            })
            .collect()
    };
    let config = TrainConfig {
        epochs: 30,
        learning_rate: 0.5,
        ..Default::default()
    };
    let mut zero = build(Init::Zeros);
    nn::train(&mut zero, &data, &config, &mut StdRng::seed_from_u64(2)).unwrap();
    let u = units(&zero);
    assert!(
        u.iter().all(|unit| unit == &u[0]),
        "zero-initialized units diverged: {u:?}"
    );
    assert_ne!(
        u[0][3],
        0f32.to_bits(),
        "the units did train (their outgoing weight moved)"
    );
    assert!(zero.accuracy(&data).unwrap() <= 0.8);
    let mut xavier = build(Init::XavierUniform);
    nn::train(&mut xavier, &data, &config, &mut StdRng::seed_from_u64(2)).unwrap();
    let u = units(&xavier);
    assert!(u.iter().any(|unit| unit != &u[0]));
    assert!(xavier.accuracy(&data).unwrap() >= 0.95);
}

#[test]
fn approximation_error_falls_as_the_hidden_layer_widens() {
    let n = 128;
    let xs: Vec<f32> = (0..n)
        .map(|i| -3.0 + 6.0 * i as f32 / (n - 1) as f32)
        .collect();
    let x = Tensor::from_vec(xs.clone(), &[n, 1]).unwrap();
    let y = Tensor::from_vec(xs.iter().map(|v| (2.0 * v).sin()).collect(), &[n, 1]).unwrap();
    let data = Dataset::regression(x, y).unwrap();
    let mse = |width: usize| {
        let mut rng = StdRng::seed_from_u64(width as u64);
        let mut net = Network::<f32>::new(1);
        let steep = Init::Uniform {
            low: -4.0,
            high: 4.0,
        };
        let h = net
            .layer_with(
                "h1",
                &[net.input()],
                width,
                Activation::Sigmoid,
                steep,
                &mut rng,
            )
            .unwrap();
        let o = net
            .neuron_with(
                "out",
                &[h],
                Activation::Identity,
                Init::XavierUniform,
                &mut rng,
            )
            .unwrap();
        net.set_output(o).unwrap();
        let cfg = TrainConfig {
            epochs: 1500,
            batch_size: n,
            learning_rate: 0.02,
            optimizer: OptimizerKind::adam(),
            ..Default::default()
        };
        nn::train(&mut net, &data, &cfg, &mut rng).unwrap();
        net.loss(&data, nn::Loss::Auto).unwrap()
    };
    let (narrow, wide) = (mse(1), mse(16));
    assert!(wide < narrow / 10.0, "width 1: {narrow}, width 16: {wide}");
}

/// The example binaries `cargo test` builds beside the test executables.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn every_example_runs_to_completion() {
    let out = std::env::temp_dir().join(format!("tapegrad-examples-{}", std::process::id()));
    let examples = [
        ("autodiff_tour", vec!["tour_scalar.dot", "tour_tensor.dot"]),
        (
            "why_layers",
            vec!["why_layers_xor.svg", "why_layers_spirals.svg"],
        ),
        (
            "feature_space",
            vec!["feature_space_input.svg", "feature_space_hidden.svg"],
        ),
        (
            "universal_approximation",
            vec![
                "universal_approximation_sin.svg",
                "universal_approximation_sum_of_sigmoids.svg",
            ],
        ),
        ("zero_init", vec!["zero_init_loss.svg"]),
        ("depth_vs_width", vec!["depth_vs_width_sigmoid.svg"]),
        ("shapes", vec![]),
        (
            "conv_digits",
            vec!["conv_digits_curves.svg", "conv_digits_filters.svg"],
        ),
        ("transformer", vec!["transformer_recall.svg"]),
        (
            "newton_logistic",
            vec!["newton_logistic.svg", "newton_unpenalized.svg"],
        ),
        ("pinn", vec!["pinn.svg", "pinn_training.svg"]),
        ("bench_your_model", vec![]),
    ];
    if examples
        .iter()
        .any(|(name, _)| !example_binary(name).exists())
    {
        // Run as `cargo test --test why_layers`, cargo built only this test: build the examples.
        let status = Command::new(env!("CARGO"))
            .args(["build", "--examples", "--quiet"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the examples failed");
    }
    for (name, files) in examples {
        let bin = example_binary(name);
        assert!(bin.exists(), "{} is missing", bin.display());
        let output = Command::new(&bin)
            .args(["--quick", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{name} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stdout.is_empty(), "{name} printed nothing");
        for f in files {
            let text =
                std::fs::read_to_string(out.join(f)).unwrap_or_else(|e| panic!("{name}: {f}: {e}"));
            assert!(
                text.starts_with("<svg") || text.starts_with("digraph"),
                "{name}: {f}"
            );
        }
    }
    std::fs::remove_dir_all(&out).ok();
}
