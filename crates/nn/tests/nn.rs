//! Networks, training, data and errors.

use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autodiff::{Tape, Var, gradcheck};
use tapegrad_nn::data::{self, Standardizer};
use tapegrad_nn::{
    Activation, ConfusionMatrix, Dataset, Init, Loss, Model, Network, NodeId, NodeKind, Optimizer,
    OptimizerKind, ParamGrads, ParamId, ParamStore, TrainConfig, train,
};
use tapegrad_tensor::Tensor;

fn xor4() -> Dataset<f64> {
    let x = Tensor::from_vec(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]).unwrap();
    Dataset::classification(x, vec![0, 1, 1, 0]).unwrap()
}

fn full_batch(epochs: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 4,
        learning_rate: lr,
        shuffle: false,
        ..Default::default()
    }
}

/// Two well separated Gaussian blobs: a line separates them.
fn blobs(n: usize, rng: &mut StdRng) -> Dataset<f32> {
    let noise = Tensor::<f32>::randn(&[n, 2], 0.0, 0.5, rng);
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let c = if i % 2 == 0 { -2.0 } else { 2.0 };
        x.push(c + noise.as_slice()[2 * i]);
        x.push(c + noise.as_slice()[2 * i + 1]);
        labels.push(i % 2);
    }
    Dataset::classification(Tensor::from_vec(x, &[n, 2]).unwrap(), labels).unwrap()
}

#[test]
fn logistic_regression_is_one_neuron_node() {
    let mut rng = StdRng::seed_from_u64(0);
    let net = Network::<f32>::logistic_regression(30, &mut rng);
    assert_eq!(net.num_nodes(), 1);
    assert_eq!(net.num_parameters(), 31);
    let out = net.output().unwrap();
    assert!(matches!(
        net.node(out).unwrap().kind,
        NodeKind::Neuron {
            activation: Activation::Sigmoid,
            ..
        }
    ));
    let sm = Network::<f32>::softmax_regression(4, 3, &mut rng);
    assert_eq!(sm.num_nodes(), 1);
    assert!(matches!(
        sm.node(sm.output().unwrap()).unwrap().kind,
        NodeKind::Layer {
            activation: Activation::Softmax,
            ..
        }
    ));
    assert_eq!(
        sm.predict(&Tensor::zeros(&[2, 4])).unwrap().to_vec(),
        vec![1.0 / 3.0; 6]
    );
}

#[test]
fn logistic_regression_separates_blobs_but_not_xor() {
    let mut rng = StdRng::seed_from_u64(1);
    let data = blobs(200, &mut rng);
    let mut net = Network::logistic_regression(2, &mut rng);
    train(
        &mut net,
        &data,
        &TrainConfig {
            epochs: 50,
            ..Default::default()
        },
        &mut rng,
    )
    .unwrap();
    assert!(net.accuracy(&data).unwrap() >= 0.98);

    let xor = xor4();
    let mut lr = Network::<f64>::logistic_regression(2, &mut rng);
    train(&mut lr, &xor, &full_batch(2000, 0.5), &mut rng).unwrap();
    assert!(lr.accuracy(&xor).unwrap() <= 0.75);
}

#[test]
fn a_hidden_layer_fits_xor4_exactly() {
    for sizes in [[2, 2, 1], [2, 4, 1]] {
        let mut hits = 0;
        for seed in 0..5 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut net = Network::<f64>::mlp(&sizes, &mut rng);
            let config = TrainConfig {
                optimizer: OptimizerKind::adam(),
                ..full_batch(3000, 0.05)
            };
            train(&mut net, &xor4(), &config, &mut rng).unwrap();
            if net.accuracy(&xor4()).unwrap() == 1.0 {
                hits += 1;
            }
        }
        // [2, 2, 1] is the smallest network that can fit XOR and lands in a local minimum from
        // some starts (2 of these 5 seeds fit it); with [2, 4, 1] every seed fits.
        let need = if sizes[1] == 2 { 2 } else { 5 };
        assert!(hits >= need, "{sizes:?}: {hits}/5 seeds fit XOR exactly");
    }
}

#[test]
fn default_config_gets_sigmoid_networks_off_the_plateau() {
    // The README's settings: 300 epochs, batch 32, lr 0.5, everything else default.
    let mut good = 0;
    for seed in 0..10 {
        let mut rng = StdRng::seed_from_u64(seed);
        let data = data::xor::<f32, _>(400, 0.1, &mut rng);
        let mut mlp = Network::mlp(&[2, 8, 1], &mut rng);
        let config = TrainConfig {
            epochs: 300,
            batch_size: 32,
            learning_rate: 0.5,
            ..Default::default()
        };
        train(&mut mlp, &data, &config, &mut rng).unwrap();
        if mlp.accuracy(&data).unwrap() >= 0.9 {
            good += 1;
        }
    }
    assert!(good >= 9, "{good}/10 seeds reached 0.9");
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let run = || {
        let mut rng = StdRng::seed_from_u64(7);
        let data = data::moons::<f32, _>(100, 0.2, &mut rng);
        let mut net = Network::mlp(&[2, 6, 1], &mut rng);
        let report = train(
            &mut net,
            &data,
            &TrainConfig {
                epochs: 5,
                ..Default::default()
            },
            &mut rng,
        )
        .unwrap();
        let params: Vec<Vec<f32>> = net.params.iter().map(|(_, p)| p.value().to_vec()).collect();
        (
            params,
            report.history.iter().map(|h| h.loss).collect::<Vec<_>>(),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn network_forward_passes_gradcheck_in_f64() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut net = Network::<f64>::new(3);
    let h = net
        .layer(&[net.input()], 4, Activation::Tanh, &mut rng)
        .unwrap();
    let g = net.layer(&[h], 3, Activation::Sigmoid, &mut rng).unwrap();
    let y = net
        .layer_with(
            "out",
            &[g, net.input()],
            2,
            Activation::Softmax,
            Init::XavierNormal,
            &mut rng,
        )
        .unwrap();
    net.set_output(y).unwrap();
    let x = Tensor::<f64>::randn(&[5, 3], 0.0, 1.0, &mut rng);
    let mut inputs = vec![x];
    inputs.extend(net.params.iter().map(|(_, p)| p.value().add_scalar(0.1)));
    let labels = [0, 1, 1, 0, 1];
    let report = gradcheck(&inputs, |_, v: &[Var<'_, f64>]| {
        let bound = net.bind_vars(&v[1..]).map_err(|_| unreachable_err())?;
        let out = net
            .forward_bound(&bound, v[0])
            .map_err(|_| unreachable_err())?;
        out.logits.softmax_cross_entropy(&labels)
    })
    .unwrap();
    assert!(report.passed(1e-6), "{report:?}");
    // The prediction path without a tape agrees with the tape's forward.
    let tape = Tape::<f64>::new();
    let xv = tape.constant(inputs[0].clone());
    let out = net
        .forward_bound(&net.bind(&tape), xv)
        .unwrap()
        .output()
        .unwrap();
    let direct = net.predict(&inputs[0]).unwrap();
    for (a, b) in out.value().as_slice().iter().zip(direct.as_slice()) {
        assert!((a - b).abs() < 1e-12);
    }
}

fn unreachable_err() -> tapegrad_autodiff::AutodiffError {
    tapegrad_autodiff::AutodiffError::NonScalarLoss { shape: vec![] }
}

#[test]
fn skip_connection_network_trains() {
    let mut rng = StdRng::seed_from_u64(4);
    let data = data::xor::<f32, _>(200, 0.1, &mut rng);
    let mut net = Network::<f32>::new(2);
    let h = net
        .layer(&[net.input()], 8, Activation::Sigmoid, &mut rng)
        .unwrap();
    let y = net
        .neuron(&[h, net.input()], Activation::Sigmoid, &mut rng)
        .unwrap();
    net.set_output(y).unwrap();
    assert_eq!(net.node(y).unwrap().inputs.len(), 2);
    let config = TrainConfig {
        epochs: 200,
        learning_rate: 0.5,
        ..Default::default()
    };
    let report = train(&mut net, &data, &config, &mut rng).unwrap();
    assert!(report.history[0].loss > report.last().unwrap().loss);
    assert!(net.accuracy(&data).unwrap() >= 0.95);
    let hidden = net.activations(&data.x, h).unwrap();
    assert_eq!(hidden.shape(), &[200, 8]);
    assert!(hidden.as_slice().iter().all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn summary_and_drawing() {
    let mut rng = StdRng::seed_from_u64(0);
    let net = Network::<f32>::mlp(&[2, 8, 1], &mut rng);
    let summary = net.to_string();
    assert!(
        summary.contains("h1       layer   input            [n, 8]     sigmoid        24"),
        "{summary}"
    );
    assert!(
        summary.contains("out      neuron  h1               [n, 1]     sigmoid         9 (output)"),
        "{summary}"
    );
    assert!(summary.ends_with("2 nodes, 33 parameters (f32)"));
    let dot = net.to_dot();
    assert!(dot.contains("\"input\" -> \"h1\";") && dot.contains("\"h1\" -> \"out\";"));
    assert!(dot.contains("out: neuron x1\\nsigmoid, 9 params"));
}

#[test]
fn bad_settings_fail_before_training() {
    let mut rng = StdRng::seed_from_u64(0);
    let data = data::xor::<f32, _>(40, 0.1, &mut rng);
    let mut net = Network::mlp(&[2, 4, 1], &mut rng);
    let before = net.params.clone();
    let bad = |net: &mut Network<f32>, data: &Dataset<f32>, cfg: TrainConfig| {
        let err = train(net, data, &cfg, &mut StdRng::seed_from_u64(0)).unwrap_err();
        err.to_string()
    };
    let base = TrainConfig::default();
    assert_eq!(
        bad(
            &mut net,
            &data,
            TrainConfig {
                batch_size: 0,
                ..base.clone()
            }
        ),
        "invalid setting batch_size: must be at least 1, got 0"
    );
    assert_eq!(
        bad(
            &mut net,
            &data,
            TrainConfig {
                learning_rate: f64::NAN,
                ..base.clone()
            }
        ),
        "invalid setting learning_rate: must be a finite number >= 0, got NaN"
    );
    assert_eq!(
        bad(
            &mut net,
            &data,
            TrainConfig {
                learning_rate: -0.1,
                ..base.clone()
            }
        ),
        "invalid setting learning_rate: must be a finite number >= 0, got -0.1"
    );
    assert_eq!(
        bad(
            &mut net,
            &data,
            TrainConfig {
                optimizer: OptimizerKind::sgd_momentum(1.5),
                ..base.clone()
            }
        ),
        "invalid setting momentum: must lie in [0, 1), got 1.5"
    );
    let empty = data.subset(&[]).unwrap();
    assert_eq!(
        bad(&mut net, &empty, base.clone()),
        "invalid data for train: the dataset is empty"
    );
    let three = Dataset::classification(data.x.clone(), (0..40).map(|i| i % 3).collect()).unwrap();
    assert_eq!(
        bad(&mut net, &three, base.clone()),
        "invalid data for train: label 2 of row 2 is out of range: the model's 1 output(s) predict 2 classes"
    );
    let wide = data::iris::<f32>();
    assert_eq!(
        bad(&mut net, &wide, base.clone()),
        "invalid data for train: the model takes 2 input features, the data has shape [150, 4]"
    );
    // Nothing was trained.
    for ((_, a), (_, b)) in before.iter().zip(net.params.iter()) {
        assert_eq!(a.value(), b.value());
    }
    // predict checks the input width too.
    assert_eq!(
        net.predict(&Tensor::zeros(&[3, 5]))
            .unwrap_err()
            .to_string(),
        "invalid data for predict: the model takes inputs of shape [batch, 2], got [3, 5]"
    );
}

#[test]
fn builder_errors_are_clear() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut a = Network::<f32>::new(2);
    let other = Network::<f32>::mlp(&[2, 3, 1], &mut rng);
    let foreign = other.output().unwrap();
    let _ = a
        .layer(&[a.input()], 2, Activation::Relu, &mut rng)
        .unwrap();
    let err = a.neuron(&[foreign], Activation::Sigmoid, &mut rng);
    // Slotmap keys can collide across maps; what must never happen is a silent wrong width.
    if let Ok(id) = err {
        assert_eq!(a.node(id).unwrap().inputs, vec![foreign]);
    }
    assert!(a.output().is_err());
    assert_eq!(
        a.set_output(a.input()).unwrap_err().to_string(),
        "invalid node in set_output: the input node cannot be the output"
    );
    assert_eq!(
        a.layer(&[], 2, Activation::Relu, &mut rng)
            .unwrap_err()
            .to_string(),
        "invalid node in layer: node \"h2\" has no inputs"
    );
    assert_eq!(
        Network::<f32>::try_mlp(&[2], Activation::Sigmoid, &mut rng)
            .unwrap_err()
            .to_string(),
        "invalid setting mlp sizes: need [inputs, hidden..., outputs], all above zero, got [2]"
    );
}

#[test]
fn optimizers_update_in_place_with_known_values() {
    let mut store = ParamStore::<f64>::new();
    let id = store.insert("w", Tensor::from_vec(vec![1.0, -2.0], &[2]).unwrap());
    let mut g = ParamGrads::new();
    g.insert(id, Tensor::from_vec(vec![0.5, 0.5], &[2]).unwrap());
    let mut sgd = Optimizer::new(OptimizerKind::sgd_momentum(0.5)).unwrap();
    sgd.step(&mut store, &g, 0.1).unwrap();
    assert_eq!(store[id].to_vec(), vec![0.95, -2.05]);
    sgd.step(&mut store, &g, 0.1).unwrap(); // v = 0.5 * 0.5 + 0.5 = 0.75
    assert!((store[id].as_slice()[0] - 0.875).abs() < 1e-12);
    let mut adam = Optimizer::new(OptimizerKind::adam()).unwrap();
    let before = store[id].to_vec();
    adam.step(&mut store, &g, 0.01).unwrap();
    // Adam's first step moves each parameter by about lr against the gradient's sign.
    for (b, a) in before.iter().zip(store[id].as_slice()) {
        assert!((b - a - 0.01).abs() < 1e-6);
    }
    let mut wrong = ParamGrads::new();
    wrong.insert(id, Tensor::<f64>::zeros(&[3]));
    let before = store[id].to_vec();
    let err = adam.step(&mut store, &wrong, 0.01).unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter w in optimizer step: has shape [2], its gradient [3]"
    );
    assert_eq!(store[id].to_vec(), before, "a refused step changes nothing");
}

#[test]
fn mse_regression_and_explicit_losses() {
    let mut rng = StdRng::seed_from_u64(5);
    let x = Tensor::<f64>::rand_uniform(&[64, 1], -1.0, 1.0, &mut rng);
    let y = x.mul_scalar(3.0).add_scalar(0.5);
    let data = Dataset::regression(x, y).unwrap();
    let mut net = Network::<f64>::new(1);
    let out = net
        .neuron(&[net.input()], Activation::Identity, &mut rng)
        .unwrap();
    net.set_output(out).unwrap();
    let config = TrainConfig {
        epochs: 200,
        learning_rate: 0.05,
        ..Default::default()
    };
    train(&mut net, &data, &config, &mut rng).unwrap();
    assert!(net.loss(&data, Loss::Auto).unwrap() < 1e-6);
    let w = net.params.find("n1.weight").unwrap();
    assert!((net.params[w].as_slice()[0] - 3.0).abs() < 1e-3);
    // Full-batch and shuffled: the rows of x and y stay paired.
    let mut net2 = Network::<f64>::new(1);
    let out2 = net2
        .neuron(&[net2.input()], Activation::Identity, &mut rng)
        .unwrap();
    net2.set_output(out2).unwrap();
    let full = TrainConfig {
        epochs: 500,
        batch_size: 64,
        learning_rate: 0.1,
        ..Default::default()
    };
    train(&mut net2, &data, &full, &mut rng).unwrap();
    assert!(net2.loss(&data, Loss::Auto).unwrap() < 1e-6);
    // Cross-entropy on regression targets is refused.
    let err = net.loss(&data, Loss::BinaryCrossEntropy).unwrap_err();
    assert!(
        err.to_string().contains("cross-entropy needs class labels"),
        "{err}"
    );
}

#[test]
fn softmax_regression_on_iris() {
    let mut rng = StdRng::seed_from_u64(0);
    let iris = data::iris::<f32>();
    let (train_set, test) = data::train_test_split(&iris, 0.2, &mut rng).unwrap();
    let s = Standardizer::fit(&train_set.x).unwrap();
    let (train_set, test) = (
        s.transform_dataset(&train_set).unwrap(),
        s.transform_dataset(&test).unwrap(),
    );
    let mut net = Network::softmax_regression(4, 3, &mut rng);
    train(
        &mut net,
        &train_set,
        &TrainConfig {
            epochs: 100,
            ..Default::default()
        },
        &mut rng,
    )
    .unwrap();
    let acc = net.accuracy(&test).unwrap();
    assert!(acc >= 0.9, "{acc}");
    let cm = net.confusion_matrix(&test).unwrap();
    assert_eq!(cm.counts.iter().flatten().sum::<usize>(), 30);
    assert_eq!(
        cm.counts
            .iter()
            .map(|r| r.iter().sum::<usize>())
            .collect::<Vec<_>>(),
        vec![10, 10, 10]
    );
    assert!((cm.accuracy() - acc).abs() < 1e-12);
}

#[test]
fn confusion_matrix_counts() {
    let cm = ConfusionMatrix::new(&[0, 1, 1, 2, 0], &[0, 1, 2, 2, 1], 3).unwrap();
    assert_eq!(cm.counts, vec![vec![1, 0, 0], vec![1, 1, 0], vec![0, 1, 1]]);
    assert_eq!(cm.accuracy(), 0.6);
    assert_eq!(
        cm.to_string(),
        "   t\\p   0   1   2\n     0   1   0   0\n     1   1   1   0\n     2   0   1   1"
    );
    assert!(ConfusionMatrix::new(&[3], &[0], 3).is_err());
}

#[test]
fn the_finite_check_stops_training_at_the_first_nan_with_epoch_and_step() {
    let mut rng = StdRng::seed_from_u64(5);
    let x = Tensor::<f32>::rand_uniform(&[64, 1], -1.0, 1.0, &mut rng);
    let y = x.mul_scalar(1e3);
    let data = Dataset::regression(x, y).unwrap();
    let mut lin = Network::<f32>::new(1);
    let h = lin
        .layer(&[lin.input()], 4, Activation::Identity, &mut rng)
        .unwrap();
    let o = lin.neuron(&[h], Activation::Identity, &mut rng).unwrap();
    lin.set_output(o).unwrap();
    // A learning rate this large makes the weights overflow within a few steps.
    let config = TrainConfig {
        epochs: 50,
        learning_rate: 1e6,
        check_finite: true,
        ..Default::default()
    };
    let err = train(&mut lin, &data, &config, &mut rng).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, tapegrad_nn::NnError::NonFiniteAt { epoch: 1..=3, .. }),
        "{msg}"
    );
    assert!(msg.starts_with("non-finite value at epoch "), "{msg}");
    assert!(msg.contains("first offending values ["), "{msg}");
    assert!(msg.contains("non-finite forward value at node #"), "{msg}");
    // Without the check the same run goes on to NaN without complaint.
    let config = TrainConfig {
        check_finite: false,
        ..config
    };
    let mut lin2 = Network::<f32>::new(1);
    let h = lin2
        .layer(&[lin2.input()], 4, Activation::Identity, &mut rng)
        .unwrap();
    let o = lin2.neuron(&[h], Activation::Identity, &mut rng).unwrap();
    lin2.set_output(o).unwrap();
    let report = train(&mut lin2, &data, &config, &mut rng).unwrap();
    assert!(!report.last().unwrap().loss.is_finite());
}

#[test]
fn forward_bound_records_the_output_activation_only_when_asked() {
    let mut rng = StdRng::seed_from_u64(0);
    let net = Network::<f64>::logistic_regression(3, &mut rng);
    let x = Tensor::randn(&[4, 3], 0.0, 1.0, &mut rng);
    let tape = Tape::new();
    let bound = net.bind(&tape);
    let before = tape.len();
    let out = net.forward_bound(&bound, tape.constant(x.clone())).unwrap();
    // The input and x W + b (one `linear` node): the loss takes the logits, so no sigmoid is
    // recorded.
    assert_eq!(tape.len() - before, 2);
    assert_eq!(out.logits.op_name(), "linear");
    let y = out.output().unwrap();
    assert_eq!(y.op_name(), "sigmoid");
    assert_eq!(y.value(), net.predict(&x).unwrap());

    // An output node that another node reads is evaluated for that reader.
    let mut net = Network::<f64>::new(2);
    let h = net
        .layer(&[net.input()], 3, Activation::Tanh, &mut rng)
        .unwrap();
    let top = net
        .neuron(&[h, net.input()], Activation::Sigmoid, &mut rng)
        .unwrap();
    assert_eq!(net.node(top).unwrap().inputs.len(), 2);
    net.set_output(h).unwrap();
    let x = Tensor::randn(&[5, 2], 0.0, 1.0, &mut rng);
    let tape = Tape::new();
    let out = net
        .forward_bound(&net.bind(&tape), tape.constant(x.clone()))
        .unwrap();
    assert_eq!(out.output().unwrap().value(), net.predict(&x).unwrap());
    assert_eq!(out.logits.shape().as_slice(), &[5, 3]);
}

/// A hidden layer is one fused node (`linear_tanh`, `linear_relu`, `linear_sigmoid`) with the
/// values and gradients, bit for bit, of `linear` then the activation; the output layer stays
/// a `linear` node (the loss reads its logits).
#[test]
fn hidden_layers_are_fused_nodes_with_the_gradients_of_two() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut net = Network::<f32>::new(3);
    let acts = [Activation::Tanh, Activation::Relu, Activation::Sigmoid];
    let mut prev = net.input();
    let mut hidden = Vec::new();
    for act in acts {
        prev = net.layer(&[prev], 6, act, &mut rng).unwrap();
        hidden.push(prev);
    }
    let out = net
        .layer(&[prev], 2, Activation::Softmax, &mut rng)
        .unwrap();
    net.set_output(out).unwrap();
    let x = Tensor::randn(&[7, 3], 0.0, 1.0, &mut rng);
    let labels = [0, 1, 1, 0, 1, 0, 0];

    let tape = Tape::new();
    let bound = net.bind(&tape);
    let before = tape.len();
    let logits = net
        .forward_bound(&bound, tape.constant(x.clone()))
        .unwrap()
        .logits;
    // The input, three fused layers and the output's `linear`.
    assert_eq!(tape.len() - before, 5);
    assert_eq!(logits.op_name(), "linear");
    let trace = tape.trace();
    for name in ["linear_tanh", "linear_relu", "linear_sigmoid"] {
        assert!(trace.contains(name), "{name} in\n{trace}");
    }
    let loss = logits.softmax_cross_entropy(&labels).unwrap();
    let fused = bound.backward(loss).unwrap();

    // The same network written as `linear` and activation nodes.
    let apart = Tape::new();
    let p = |node: NodeId, part: &str| {
        let name = format!("{}.{part}", net.node(node).unwrap().name);
        let id = net.params.find(&name).unwrap();
        (id, apart.var(net.params[id].clone()))
    };
    let mut h = apart.constant(x);
    let mut ids = Vec::new();
    for (&node, act) in hidden.iter().zip(acts) {
        let ((wi, w), (bi, b)) = (p(node, "weight"), p(node, "bias"));
        h = act.apply_var(h.linear(w, b).unwrap()).unwrap();
        ids.extend([(wi, w), (bi, b)]);
    }
    let ((wi, w), (bi, b)) = (p(out, "weight"), p(out, "bias"));
    ids.extend([(wi, w), (bi, b)]);
    let loss2 = h
        .linear(w, b)
        .unwrap()
        .softmax_cross_entropy(&labels)
        .unwrap();
    assert_eq!(
        loss.item().unwrap().to_bits(),
        loss2.item().unwrap().to_bits()
    );
    let grads = apart.backward(loss2).unwrap();
    for (id, v) in ids {
        let (a, b) = (fused.get(id).unwrap(), &grads[v]);
        assert_eq!(a.shape(), b.shape());
        for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
            assert_eq!(x.to_bits(), y.to_bits());
        }
    }
}

/// `forward_bound` reads the input's shape axis by axis; a wrong rank or width is still the
/// error naming both shapes.
#[test]
fn forward_bound_refuses_inputs_of_the_wrong_shape() {
    let mut rng = StdRng::seed_from_u64(2);
    let net = Network::<f32>::mlp(&[3, 4, 2], &mut rng);
    let tape = Tape::new();
    let bound = net.bind(&tape);
    for shape in [&[5, 2][..], &[3][..], &[2, 3, 1][..], &[5, 4][..]] {
        let x = tape.constant(Tensor::zeros(shape));
        let err = net.forward_bound(&bound, x).unwrap_err().to_string();
        assert!(
            err.contains("inputs of shape [batch, 3]") && err.contains(&format!("{shape:?}")),
            "{shape:?}: {err}"
        );
    }
    let ok = net.forward_bound(&bound, tape.constant(Tensor::zeros(&[5, 3])));
    assert_eq!(ok.unwrap().logits.shape().as_slice(), &[5, 2]);
}

/// `Bound` finds a parameter's leaf at its position in the store first; ids that are not
/// there (another store's, whose positions coincide; vars bound by hand in another order
/// through a second store) are still found, or not, by search. Forty parameters: past the
/// sixteen held inline.
#[test]
fn bound_finds_every_parameter_and_only_its_own() {
    let mut params = ParamStore::<f64>::new();
    let mut other = ParamStore::<f64>::new();
    let ids: Vec<ParamId> = (0..40)
        .map(|i| params.insert(format!("p{i}"), Tensor::full(&[1 + i % 3], i as f64)))
        .collect();
    let foreign: Vec<ParamId> = (0..40)
        .map(|i| other.insert(format!("p{i}"), Tensor::zeros(&[1])))
        .collect();
    let tape = Tape::new();
    let bound = params.bind(&tape);
    for (i, &id) in ids.iter().enumerate() {
        let v = bound.var(id).unwrap();
        assert_eq!(v.label().as_deref(), Some(format!("p{i}").as_str()));
        assert_eq!(v.value().as_slice()[0], i as f64);
        assert_eq!(bound[id].index(), v.index());
        assert_eq!(bound.get(id).unwrap().index(), v.index());
    }
    for &id in &foreign {
        assert!(bound.var(id).is_none());
        assert!(bound.get(id).is_err());
    }
    // bind_vars: the given vars, by store order, whatever their order on the tape.
    let values: Vec<Tensor<f64>> = params.iter().map(|(_, p)| p.value().clone()).collect();
    let mut vars: Vec<_> = values.into_iter().rev().map(|t| tape.var(t)).collect();
    vars.reverse();
    assert!(vars[0].index() > vars[39].index());
    let by_hand = params.bind_vars(&vars).unwrap();
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(by_hand[id].index(), vars[i].index());
    }
    let grads = bound
        .backward(
            ids.iter()
                .map(|&id| bound[id].sum())
                .reduce(|a, b| a + b)
                .unwrap(),
        )
        .unwrap();
    assert_eq!(grads.len(), 40);
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(grads[id].len(), 1 + i % 3);
    }
}
