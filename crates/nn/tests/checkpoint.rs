//! Checkpoints: round trips, exact resumption, mismatch reports, damaged files.

use std::path::PathBuf;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_nn::checkpoint::{load_checkpoint, load_params, save_checkpoint, save_params};
use tapegrad_nn::{
    Dataset, Network, NnError, OptimizerKind, TrainConfig, TrainState, data, train, train_from,
};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-ckpt-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("model.safetensors")
}

fn bits(net: &Network<f32>) -> Vec<Vec<u32>> {
    net.params
        .iter()
        .map(|(_, p)| p.value().as_slice().iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn params_round_trip_in_f32_and_f64() {
    let path = temp("roundtrip");
    let mut rng = StdRng::seed_from_u64(0);
    let net = Network::<f32>::mlp(&[3, 5, 2], &mut rng);
    save_params(&path, &net).unwrap();
    let mut other = Network::<f32>::mlp(&[3, 5, 2], &mut StdRng::seed_from_u64(9));
    assert_ne!(bits(&net), bits(&other));
    load_params(&path, &mut other).unwrap();
    assert_eq!(bits(&net), bits(&other));
    // The file is plain safetensors: any reader sees the parameter names, shapes and dtype.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(
        names,
        vec!["h1.bias", "h1.weight", "out.bias", "out.weight"]
    );
    assert_eq!(st.tensor("h1.weight").unwrap().shape(), &[3, 5]);
    assert_eq!(
        st.tensor("h1.weight").unwrap().dtype(),
        safetensors::Dtype::F32
    );

    let net64 = Network::<f64>::mlp(&[3, 5, 2], &mut rng);
    save_params(&path, &net64).unwrap();
    let mut other64 = Network::<f64>::mlp(&[3, 5, 2], &mut rng);
    load_params(&path, &mut other64).unwrap();
    for ((_, a), (_, b)) in net64.params.iter().zip(other64.params.iter()) {
        assert_eq!(a.value(), b.value());
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

fn resumes_exactly(optimizer: OptimizerKind, tag: &str) {
    let path = temp(tag);
    let data: Dataset<f32> = data::moons(120, 0.2, &mut StdRng::seed_from_u64(3));
    let config = TrainConfig {
        epochs: 10,
        batch_size: 16,
        learning_rate: 0.05,
        optimizer,
        ..Default::default()
    };
    // Uninterrupted.
    let mut full = Network::<f32>::mlp(&[2, 8, 1], &mut StdRng::seed_from_u64(4));
    train(&mut full, &data, &config, &mut StdRng::seed_from_u64(5)).unwrap();
    // Five epochs, a checkpoint, then a fresh process's view: another network and state.
    let mut first = Network::<f32>::mlp(&[2, 8, 1], &mut StdRng::seed_from_u64(4));
    let mut state = TrainState::new(&config, &mut StdRng::seed_from_u64(5)).unwrap();
    let half = TrainConfig {
        epochs: 5,
        ..config.clone()
    };
    train_from(&mut first, &data, &half, &mut state, |_, _| {}).unwrap();
    save_checkpoint(&path, &first, &state).unwrap();
    let mut resumed = Network::<f32>::mlp(&[2, 8, 1], &mut StdRng::seed_from_u64(77));
    let mut loaded = load_checkpoint(&path, &mut resumed).unwrap();
    assert_eq!(loaded.epoch, 5);
    assert_eq!(loaded.shuffle_seed, state.shuffle_seed);
    let report = train_from(&mut resumed, &data, &config, &mut loaded, |_, _| {}).unwrap();
    assert_eq!(report.history.len(), 5);
    assert_eq!(report.history[0].epoch, 6);
    assert_eq!(
        bits(&resumed),
        bits(&full),
        "{tag}: resumed parameters differ"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_resumed_run_matches_an_uninterrupted_one_bit_for_bit() {
    resumes_exactly(OptimizerKind::sgd_momentum(0.9), "sgd");
    resumes_exactly(OptimizerKind::adam(), "adam");
}

#[test]
fn training_writes_checkpoints_every_n_epochs() {
    let path = temp("every");
    let data: Dataset<f32> = data::xor(64, 0.1, &mut StdRng::seed_from_u64(0));
    let mut net = Network::<f32>::mlp(&[2, 4, 1], &mut StdRng::seed_from_u64(1));
    let config = TrainConfig {
        epochs: 7,
        checkpoint_every: 3,
        checkpoint_path: Some(path.clone()),
        ..Default::default()
    };
    train(&mut net, &data, &config, &mut StdRng::seed_from_u64(2)).unwrap();
    let mut probe = Network::<f32>::mlp(&[2, 4, 1], &mut StdRng::seed_from_u64(1));
    assert_eq!(load_checkpoint(&path, &mut probe).unwrap().epoch, 6);
    let missing_path = TrainConfig {
        checkpoint_path: None,
        ..config
    };
    assert_eq!(
        train(
            &mut net,
            &data,
            &missing_path,
            &mut StdRng::seed_from_u64(2)
        )
        .unwrap_err()
        .to_string(),
        "invalid setting checkpoint_path: checkpoint_every is set but no checkpoint_path is given"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn loading_reports_every_mismatch_and_changes_nothing() {
    let path = temp("mismatch");
    let mut rng = StdRng::seed_from_u64(0);
    let saved = Network::<f32>::mlp(&[3, 4, 1], &mut rng);
    save_params(&path, &saved).unwrap();
    let mut wider = Network::<f32>::mlp(&[3, 6, 2], &mut rng);
    let before = bits(&wider);
    let err = load_params(&path, &mut wider).unwrap_err();
    assert!(matches!(err, NnError::Checkpoint { .. }));
    let msg = err.to_string();
    for part in [
        "parameter h1.weight has shape [3, 4] in the file, the model needs [3, 6]",
        "parameter h1.bias has shape [4] in the file, the model needs [6]",
        "parameter out.weight has shape [4, 1] in the file, the model needs [6, 2]",
        "parameter out.bias has shape [1] in the file, the model needs [2]",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
    assert_eq!(bits(&wider), before);
    let mut deeper = Network::<f32>::mlp(&[3, 4, 4, 1], &mut rng);
    let msg = load_params(&path, &mut deeper).unwrap_err().to_string();
    assert!(
        msg.contains("missing parameter h2.weight") && msg.contains("missing parameter h2.bias"),
        "{msg}"
    );
    let mut shallow = Network::<f32>::logistic_regression(3, &mut rng);
    let msg = load_params(&path, &mut shallow).unwrap_err().to_string();
    assert!(
        msg.contains("unexpected tensor h1.weight (not a parameter of this model)"),
        "{msg}"
    );
    let mut f64_net = Network::<f64>::mlp(&[3, 4, 1], &mut rng);
    let msg = load_params(&path, &mut f64_net).unwrap_err().to_string();
    assert!(
        msg.contains("parameter h1.weight: dtype F32, the model holds f64"),
        "{msg}"
    );
    // Parameters only: no training state to resume from.
    let mut same = Network::<f32>::mlp(&[3, 4, 1], &mut rng);
    let msg = load_checkpoint(&path, &mut same).unwrap_err().to_string();
    assert!(
        msg.ends_with("no training state: missing \"optimizer\""),
        "{msg}"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn truncated_and_corrupted_files_are_errors() {
    let path = temp("damaged");
    let mut rng = StdRng::seed_from_u64(0);
    let net = Network::<f32>::mlp(&[3, 4, 1], &mut rng);
    save_params(&path, &net).unwrap();
    let good = std::fs::read(&path).unwrap();
    let mut target = Network::<f32>::mlp(&[3, 4, 1], &mut rng);
    for cut in [0, 4, 8, 20, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..cut]).unwrap();
        let err = load_params(&path, &mut target).unwrap_err();
        assert!(
            err.to_string().contains("not a valid safetensors file"),
            "cut {cut}: {err}"
        );
    }
    let mut flipped = good.clone();
    flipped[10] ^= 0xff; // inside the JSON header
    std::fs::write(&path, &flipped).unwrap();
    assert!(load_params(&path, &mut target).is_err());
    let mut lying = good.clone();
    lying[..8].copy_from_slice(&u64::MAX.to_le_bytes()); // a header length past the file
    std::fs::write(&path, &lying).unwrap();
    assert!(load_params(&path, &mut target).is_err());
    let err = load_params(path.with_extension("missing"), &mut target).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
