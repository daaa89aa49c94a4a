//! Parameters shared with the tape and updated in place; sum and custom nodes; parameters by
//! name; custom losses; the `Model` trait's entry points.

use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autodiff::{Tape, Var};
use tapegrad_nn::checkpoint::{load_params, save_params};
use tapegrad_nn::{
    Activation, CustomNode, Dataset, Init, Loss, Model, Network, NnError, Optimizer, OptimizerKind,
    ParamStore, Result, Targets, TrainConfig, train,
};
use tapegrad_tensor::Tensor;

/// The address of a parameter's elements: the same before and after a step when it is updated
/// in place.
fn address(params: &ParamStore<f32>, name: &str) -> *const f32 {
    params[params.find(name).unwrap()].as_slice().as_ptr()
}

#[test]
fn a_training_step_shares_parameters_with_the_tape_and_updates_them_in_place() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut net = Network::<f32>::mlp(&[784, 64, 10], &mut rng);
    let x = Tensor::<f32>::rand_uniform(&[8, 784], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..8).collect();
    let before = address(&net.params, "h1.weight");
    let value_before = net.param("h1.weight").unwrap().clone();
    let mut opt = Optimizer::new(OptimizerKind::adam()).unwrap();
    let mut tape = Tape::new();
    for _ in 0..3 {
        let bound = net.bind(&tape);
        // The leaf reads the parameter's own buffer: no copy.
        let w = bound[net.params.find("h1.weight").unwrap()];
        assert_eq!(w.with_value(|t| t.as_slice().as_ptr()), before);
        let logits = net.forward(&bound, tape.constant(x.clone())).unwrap();
        let grads = bound
            .backward(logits.softmax_cross_entropy(&labels).unwrap())
            .unwrap();
        tape.clear();
        opt.step(&mut net.params, &grads, 1e-3).unwrap();
    }
    assert_eq!(
        address(&net.params, "h1.weight"),
        before,
        "updated in place"
    );
    assert_ne!(net.param("h1.weight").unwrap(), &value_before);
}

#[test]
fn a_step_before_the_tape_lets_go_is_refused_and_changes_nothing() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut net = Network::<f64>::mlp(&[2, 3, 1], &mut rng);
    let mut opt = Optimizer::new(OptimizerKind::sgd()).unwrap();
    let tape = Tape::new();
    let bound = net.bind(&tape);
    let x = tape.constant(Tensor::ones(&[4, 2]));
    let grads = bound
        .backward(net.forward(&bound, x).unwrap().sum())
        .unwrap();
    let before: Vec<Vec<f64>> = net.params.iter().map(|(_, p)| p.value().to_vec()).collect();
    // The tape still holds every parameter: writing would need a copy, so it is an error.
    let err = opt.step(&mut net.params, &grads, 0.1).unwrap_err();
    assert!(
        matches!(&err, NnError::Param { name, .. } if name == "h1.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("clear the tape"), "{err}");
    let after: Vec<Vec<f64>> = net.params.iter().map(|(_, p)| p.value().to_vec()).collect();
    assert_eq!(before, after);
    drop(tape);
    opt.step(&mut net.params, &grads, 0.1).unwrap();
    let moved: Vec<Vec<f64>> = net.params.iter().map(|(_, p)| p.value().to_vec()).collect();
    assert_ne!(before, moved);
    // A weak handle alone also holds the value (it could be upgraded): still refused, until
    // it is dropped.
    let id = net.params.find("out.bias").unwrap();
    let weak = std::sync::Arc::downgrade(&net.params.get(id).unwrap().shared());
    let err = opt.step(&mut net.params, &grads, 0.1).unwrap_err();
    assert!(
        matches!(&err, NnError::Param { name, .. } if name == "out.bias"),
        "{err}"
    );
    drop(weak);
    opt.step(&mut net.params, &grads, 0.1).unwrap();
}

#[test]
fn a_cloned_network_has_parameters_of_its_own() {
    let mut rng = StdRng::seed_from_u64(0);
    let net = Network::<f32>::mlp(&[2, 4, 1], &mut rng);
    let mut copy = net.clone();
    copy.set_param("out.bias", Tensor::full(&[1], 7.0)).unwrap();
    assert_eq!(net.param("out.bias").unwrap().to_vec(), vec![0.0]);
    assert_eq!(copy.param("out.bias").unwrap().to_vec(), vec![7.0]);
}

#[test]
fn a_residual_sum_node_trains_and_shows_in_the_summary() {
    let mut rng = StdRng::seed_from_u64(4);
    let data = tapegrad_nn::data::circles::<f32, _>(300, 0.05, &mut rng);
    let mut net = Network::<f32>::new(2);
    let h = net
        .layer(&[net.input()], 8, Activation::Tanh, &mut rng)
        .unwrap();
    let f = net.layer(&[h], 8, Activation::Tanh, &mut rng).unwrap();
    let res = net.sum(&[h, f]).unwrap();
    let out = net.neuron(&[res], Activation::Sigmoid, &mut rng).unwrap();
    net.set_output(out).unwrap();
    // The sum is the elementwise sum of its inputs' activations.
    let x = data.x.clone();
    let expected = &net.activations(&x, h).unwrap() + &net.activations(&x, f).unwrap();
    assert_eq!(net.activations(&x, res).unwrap(), expected);
    let summary = net.to_string();
    assert!(summary.contains("s3       sum     h1 + h2"), "{summary}");
    assert!(net.to_dot().contains("s3: sum x8"), "{}", net.to_dot());
    let config = TrainConfig {
        epochs: 150,
        learning_rate: 0.05,
        optimizer: OptimizerKind::adam(),
        ..Default::default()
    };
    train(&mut net, &data, &config, &mut rng).unwrap();
    assert!(net.accuracy(&data).unwrap() > 0.95);
    // Sums need one width.
    let err = net.sum(&[h, out]).unwrap_err();
    assert!(err.to_string().contains("one width"), "{err}");
    let other = Network::<f32>::new(2);
    assert!(net.sum(&[h, other.input()]).is_err());
}

/// y = x + tanh(x W + b): a residual block as a node of the user's own type.
#[derive(Debug)]
struct Residual;

impl CustomNode<f64> for Residual {
    fn kind(&self) -> &str {
        "residual"
    }
    fn output_width(&self, n: usize) -> Result<usize> {
        Ok(n)
    }
    fn init(&self, n: usize, rng: &mut dyn rand::Rng) -> Result<Vec<(String, Tensor<f64>)>> {
        Ok(vec![
            (
                "w".into(),
                Init::XavierUniform.try_tensor(&[n, n], n, n, rng)?,
            ),
            ("b".into(), Tensor::zeros(&[n])),
        ])
    }
    fn forward<'t>(&self, p: &[Var<'t, f64>], x: Var<'t, f64>) -> Result<Var<'t, f64>> {
        Ok(x.add(x.linear(p[0], p[1])?.tanh())?)
    }
}

/// A node that claims one width and returns another.
#[derive(Debug)]
struct Liar;

impl CustomNode<f64> for Liar {
    fn kind(&self) -> &str {
        "liar"
    }
    fn output_width(&self, _: usize) -> Result<usize> {
        Ok(3)
    }
    fn init(&self, _: usize, _: &mut dyn rand::Rng) -> Result<Vec<(String, Tensor<f64>)>> {
        Ok(vec![])
    }
    fn forward<'t>(&self, _: &[Var<'t, f64>], x: Var<'t, f64>) -> Result<Var<'t, f64>> {
        Ok(x)
    }
}

#[test]
fn custom_nodes_train_are_drawn_and_gradient_checked() {
    let mut rng = StdRng::seed_from_u64(1);
    let data = tapegrad_nn::data::moons::<f64, _>(200, 0.1, &mut rng);
    let mut net = Network::<f64>::new(2);
    let h = net
        .layer(&[net.input()], 6, Activation::Tanh, &mut rng)
        .unwrap();
    let r = net.custom("block", &[h], Residual, &mut rng).unwrap();
    let out = net.neuron(&[r], Activation::Sigmoid, &mut rng).unwrap();
    net.set_output(out).unwrap();
    assert_eq!(net.param("block.w").unwrap().shape(), &[6, 6]);
    assert!(net.to_string().contains("block    residual h1"), "{net}");
    assert!(
        net.to_dot().contains("block: residual x6\\n42 params"),
        "{}",
        net.to_dot()
    );
    let (node, ids) = net.custom_node(r).unwrap();
    assert_eq!((node.kind(), ids.len()), ("residual", 2));
    // The network's gradients through the custom node, against finite differences.
    let x = data.x.select_rows(&[0, 1, 2, 3]).unwrap();
    let inputs: Vec<Tensor<f64>> = net.params.iter().map(|(_, p)| p.value().clone()).collect();
    let fail = |e: NnError| tapegrad_autodiff::AutodiffError::Custom {
        op: "network".into(),
        reason: e.to_string(),
    };
    let report = tapegrad_autodiff::gradcheck(&inputs, |tape, vars: &[Var<'_, f64>]| {
        let bound = net.bind_vars(vars).map_err(fail)?;
        let y = net
            .forward(&bound, tape.constant(x.clone()))
            .map_err(fail)?;
        Ok::<_, tapegrad_autodiff::AutodiffError>(y.sigmoid().sum())
    })
    .unwrap();
    assert!(report.passed(1e-6), "{report:?}");
    let config = TrainConfig {
        epochs: 100,
        learning_rate: 0.02,
        optimizer: OptimizerKind::adam(),
        ..Default::default()
    };
    train(&mut net, &data, &config, &mut rng).unwrap();
    assert!(net.accuracy(&data).unwrap() > 0.95);
    // A node whose forward breaks its declared width is named in the error.
    let mut bad = Network::<f64>::new(2);
    let l = bad
        .custom("fibber", &[bad.input()], Liar, &mut rng)
        .unwrap();
    bad.set_output(l).unwrap();
    let err = bad.predict(&Tensor::zeros(&[1, 2])).unwrap_err();
    assert!(
        err.to_string()
            .contains("custom node \"fibber\" (liar) returned shape [1, 2], it declared width 3"),
        "{err}"
    );
}

#[test]
fn a_regression_mlp_has_a_linear_output_and_learns_a_curve() {
    let mut rng = StdRng::seed_from_u64(2);
    let x = Tensor::<f64>::rand_uniform(&[128, 1], -2.0, 2.0, &mut rng);
    let y = x.map(|v| 3.0 * v.sin() - 1.0); // beyond a sigmoid's (0, 1)
    let data = Dataset::regression(x, y).unwrap();
    let mut net = Network::<f64>::mlp_with(
        &[1, 16, 1],
        Activation::Tanh,
        Activation::Identity,
        &mut rng,
    )
    .unwrap();
    let config = TrainConfig {
        epochs: 300,
        learning_rate: 0.01,
        optimizer: OptimizerKind::adam(),
        ..Default::default()
    };
    train(&mut net, &data, &config, &mut rng).unwrap();
    let mse = net.loss(&data, Loss::MeanSquaredError).unwrap();
    assert!(mse < 0.01, "{mse}");
    let p = net
        .predict(&Tensor::from_vec(vec![-1.5], &[1, 1]).unwrap())
        .unwrap();
    assert!((p.item().unwrap() - (3.0 * (-1.5f64).sin() - 1.0)).abs() < 0.2);
}

#[test]
fn parameters_by_name_are_checked_and_a_refused_set_changes_nothing() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut net = Network::<f32>::mlp(&[3, 4, 2], &mut rng);
    let before = net.param("out.weight").unwrap().clone();
    let err = net
        .set_param("out.weight", Tensor::zeros(&[4, 3]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter out.weight in set parameter: has shape [4, 2], the value given [4, 3]"
    );
    assert_eq!(net.param("out.weight").unwrap(), &before);
    let err = net
        .set_param("h2.weight", Tensor::zeros(&[4, 2]))
        .unwrap_err();
    assert!(err.to_string().contains("\"h1.weight\""), "{err}");
    // Weights given by name reproduce a known function.
    net.set_param("h1.weight", Tensor::zeros(&[3, 4])).unwrap();
    net.set_param("out.weight", Tensor::zeros(&[4, 2])).unwrap();
    net.set_param(
        "out.bias",
        Tensor::from_vec(vec![0.0, 2.0f32.ln()], &[2]).unwrap(),
    )
    .unwrap();
    let p = net.predict(&Tensor::ones(&[1, 3])).unwrap();
    assert!((p.as_slice()[1] - 2.0 / 3.0).abs() < 1e-6, "{p:?}");
    // And survive a save and load into a fresh network.
    let path = std::env::temp_dir().join(format!(
        "tapegrad-byname-{}.safetensors",
        std::process::id()
    ));
    save_params(&path, &net).unwrap();
    let mut fresh = Network::<f32>::mlp(&[3, 4, 2], &mut StdRng::seed_from_u64(9));
    load_params(&path, &mut fresh).unwrap();
    assert_eq!(fresh.predict(&Tensor::ones(&[1, 3])).unwrap(), p);
    std::fs::remove_file(&path).ok();
}

#[test]
fn custom_losses_train_and_are_checked() {
    let mut rng = StdRng::seed_from_u64(5);
    let x = Tensor::<f64>::rand_uniform(&[64, 1], -1.0, 1.0, &mut rng);
    let y = x.map(|v| 2.0 * v + 0.5);
    let data = Dataset::regression(x, y).unwrap();
    // Mean absolute error, which no built-in loss is.
    let l1 = Loss::custom::<f64>("l1", |out, targets| {
        let Targets::Values(y) = targets else {
            unreachable!("regression targets")
        };
        let y = out.logits.tape().constant(y.clone());
        Ok(out.logits.sub(y)?.abs().mean())
    });
    let mut net = Network::<f64>::mlp_with(
        &[1, 1],
        Activation::Identity,
        Activation::Identity,
        &mut rng,
    )
    .unwrap();
    let config = TrainConfig {
        epochs: 300,
        learning_rate: 0.01,
        optimizer: OptimizerKind::adam(),
        loss: l1.clone(),
        ..Default::default()
    };
    train(&mut net, &data, &config, &mut rng).unwrap();
    assert!((net.param("out.weight").unwrap().item().unwrap() - 2.0).abs() < 0.05);
    assert!(net.loss(&data, l1.clone()).unwrap() < 0.05);
    // Written for f64, refused for an f32 model by name.
    let mut net32 = Network::<f32>::mlp_with(
        &[1, 1],
        Activation::Identity,
        Activation::Identity,
        &mut rng,
    )
    .unwrap();
    let err = train(&mut net32, &data.cast::<f32>(), &config, &mut rng).unwrap_err();
    assert!(
        err.to_string()
            .contains("the custom loss \"l1\" was written for f64, the model computes in f32"),
        "{err}"
    );
    // A loss of more than one element is refused.
    let bad = Loss::custom::<f64>("rows", |out, _| Ok(out.logits));
    let err = net.loss(&data, bad).unwrap_err();
    assert!(
        err.to_string()
            .contains("returned shape [64, 1], not one element"),
        "{err}"
    );
}
