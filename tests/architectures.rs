//! The two architectures of the examples (`conv_digits`, `transformer`) at small size, and a
//! user's own struct with a convolution and a residual block trained through `nn::train` with a
//! custom loss, checkpointed and resumed, without `Network`.

#[path = "../examples/common/models.rs"]
mod models;

use tapegrad::autodiff::Var;
use tapegrad::nn::checkpoint::load_checkpoint;
use tapegrad::nn::{
    self, Activation, Bound, Dataset, Init, Loss, Model, Network, OptimizerKind, ParamId,
    ParamStore, Targets, TrainConfig,
};
use tapegrad::rand::{SeedableRng, rngs::StdRng};
use tapegrad::tensor::Tensor;

fn digits(rng: &mut StdRng) -> (Dataset, Dataset) {
    let d = nn::data::digits::<f32>();
    let scaled = Dataset {
        x: d.x.mul_scalar(1.0 / 16.0),
        ..d
    };
    nn::data::train_test_split(&scaled, 0.2, rng).unwrap()
}

fn bits(m: &impl Model) -> Vec<Vec<u32>> {
    m.params()
        .iter()
        .map(|(_, p)| p.value().as_slice().iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-arch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_conv_net_learns_the_digits() {
    let mut rng = StdRng::seed_from_u64(0);
    let (train, test) = digits(&mut rng);
    let mut model = models::ConvNet::new(8, 8, 10, &mut rng);
    let before = model.accuracy(&test).unwrap();
    let config = TrainConfig {
        epochs: 6,
        batch_size: 64,
        learning_rate: 5e-3,
        optimizer: OptimizerKind::adam(),
        ..Default::default()
    };
    nn::train(&mut model, &train, &config, &mut rng).unwrap();
    let after = model.accuracy(&test).unwrap();
    assert!(before < 0.3, "untrained: {before}");
    assert!(after > 0.93, "six epochs of a small conv net: {after}");
    // Predictions are softmax rows (the model's output activation).
    let p = model.predict(&test.x).unwrap();
    assert_eq!(p.shape(), &[test.len(), 10]);
    let row: f32 = p.as_slice()[..10].iter().sum();
    assert!((row - 1.0).abs() < 1e-5);
}

#[test]
fn attention_does_associative_recall_that_an_mlp_of_its_size_cannot() {
    let mut rng = StdRng::seed_from_u64(0);
    let (pairs, keys, values) = (4, 8, 8);
    let train = models::recall_data(3000, pairs, keys, values, &mut rng);
    let test = models::recall_data(500, pairs, keys, values, &mut rng);
    let mut model = models::Transformer::new(pairs + 1, keys, values, 16, 2, &mut rng);
    let config = TrainConfig {
        epochs: 6,
        batch_size: 64,
        learning_rate: 3e-3,
        optimizer: OptimizerKind::adam(),
        ..Default::default()
    };
    nn::train(&mut model, &train, &config, &mut rng).unwrap();
    let t_acc = model.accuracy(&test).unwrap();
    let (train_hot, test_hot) = (
        models::one_hot_tokens(&train, keys, values),
        models::one_hot_tokens(&test, keys, values),
    );
    let d = train_hot.num_features();
    let hidden = (model.num_parameters() - values) / (d + 1 + values);
    let mut mlp = Network::<f32>::mlp_with(
        &[d, hidden, values],
        Activation::Relu,
        Activation::Softmax,
        &mut rng,
    )
    .unwrap();
    let ratio = mlp.num_parameters() as f64 / model.num_parameters() as f64;
    assert!((0.9..1.1).contains(&ratio), "parameter counts {ratio}");
    nn::train(&mut mlp, &train_hot, &config, &mut rng).unwrap();
    let m_acc = mlp.accuracy(&test_hot).unwrap();
    assert!(t_acc > 0.6, "transformer {t_acc}");
    assert!(t_acc > 2.0 * m_acc, "transformer {t_acc}, MLP {m_acc}");
}

/// A user's model: conv 3x3 -> relu -> linear -> a residual tanh block -> linear.
struct ResidualConv {
    params: ParamStore,
    ids: [ParamId; 7],
}

impl ResidualConv {
    fn new(rng: &mut StdRng) -> Self {
        let mut params = ParamStore::new();
        let ids = [
            params.insert("conv.w", Init::HeUniform.tensor(&[4, 1, 3, 3], 9, 36, rng)),
            params.insert("conv.b", Tensor::zeros(&[4])),
            params.insert("fc.w", Init::XavierUniform.tensor(&[256, 32], 256, 32, rng)),
            params.insert("fc.b", Tensor::zeros(&[32])),
            params.insert("res.w", Init::XavierUniform.tensor(&[32, 32], 32, 32, rng)),
            params.insert("out.w", Init::XavierUniform.tensor(&[32, 10], 32, 10, rng)),
            params.insert("out.b", Tensor::zeros(&[10])),
        ];
        ResidualConv { params, ids }
    }
}

impl Model for ResidualConv {
    fn params(&self) -> &ParamStore {
        &self.params
    }
    fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }
    fn forward<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>) -> nn::Result<Var<'t, f32>> {
        let [cw, cb, fw, fb, rw, ow, ob] = self.ids.map(|id| p[id]);
        let n = x.shape()[0];
        let h = x
            .reshape(&[n, 1, 8, 8])?
            .conv2d(cw, Some(cb), (1, 1), (1, 1))?
            .relu()
            .reshape(&[n, 256])?
            .linear(fw, fb)?
            .tanh();
        let h = h.add(h.matmul(rw)?.tanh())?; // the residual block
        Ok(h.linear(ow, ob)?)
    }
}

#[test]
fn a_user_struct_trains_with_a_custom_loss_checkpoints_and_resumes_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(3);
    let (train, test) = digits(&mut rng);
    // Cross-entropy with a small penalty on the logits' size, as a closure.
    let loss = Loss::custom::<f32>("cross-entropy + logit penalty", |out, targets| {
        let Targets::Classes { labels, .. } = targets else {
            unreachable!("class labels")
        };
        let ce = out.logits.softmax_cross_entropy(labels)?;
        Ok(ce.add(out.logits.square().mean().mul_scalar(1e-3))?)
    });
    let path = temp("residual_conv.safetensors");
    let config = TrainConfig {
        epochs: 4,
        batch_size: 32,
        learning_rate: 3e-3,
        optimizer: OptimizerKind::adam(),
        loss,
        checkpoint_every: 2,
        checkpoint_path: Some(path.clone()),
        ..Default::default()
    };
    let mut model = ResidualConv::new(&mut StdRng::seed_from_u64(1));
    let mid = temp("residual_conv_mid.safetensors");
    let report = nn::train_with(&mut model, &train, &config, &mut rng, |s, _| {
        if s.epoch == 2 {
            std::fs::copy(&path, &mid).unwrap();
        }
    })
    .unwrap();
    assert!(report.history[3].loss < report.history[0].loss);
    assert!(model.accuracy(&test).unwrap() > 0.9);
    // A fresh model (other weights) resumed from epoch 2 ends on the same bits.
    let mut resumed = ResidualConv::new(&mut StdRng::seed_from_u64(2));
    assert_ne!(bits(&resumed), bits(&model));
    let mut state = load_checkpoint(&mid, &mut resumed).unwrap();
    assert_eq!(state.epoch, 2);
    let rest = TrainConfig {
        checkpoint_every: 0,
        checkpoint_path: None,
        ..config.clone()
    };
    nn::train_from(&mut resumed, &train, &rest, &mut state, |_, _| {}).unwrap();
    assert_eq!(bits(&resumed), bits(&model));
    std::fs::remove_file(&path).ok();
    std::fs::remove_file(&mid).ok();
}
