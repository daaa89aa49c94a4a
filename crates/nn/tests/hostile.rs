//! Careless and hostile use of the nn crate: absurd training settings, labels a network cannot
//! predict, datasets whose parts disagree, optimizer state of the wrong shape, ids of another
//! store or network, and damaged or lying checkpoints. Each test is a case that failed before
//! (an abort, a panic, a silently wrong number) and is now an error that says what was wrong.

use std::path::PathBuf;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_nn::checkpoint::{load_checkpoint, load_params, save_checkpoint, write_atomic};
use tapegrad_nn::data::{Targets, from_csv_str, train_test_split};
use tapegrad_nn::{
    Activation, Dataset, Loss, Model, Network, NnError, Optimizer, OptimizerKind, ParamGrads,
    ParamState, ParamStore, TrainConfig, TrainState, train, train_from,
};
use tapegrad_tensor::Tensor;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn params_of(net: &Network<f32>) -> Vec<f32> {
    net.params
        .iter()
        .flat_map(|(_, p)| p.value().to_vec())
        .collect()
}

fn small_data(rows: usize) -> Dataset<f32> {
    let x = Tensor::from_fn(&[rows, 2], |i| (i % 7) as f32 / 7.0);
    Dataset::classification(x, (0..rows).map(|i| i % 2).collect()).unwrap()
}

#[test]
fn absurd_epoch_counts_train_instead_of_aborting() {
    // `epochs` was preallocated as history: 10^9 aborted, usize::MAX panicked. A checkpoint
    // folder that does not exist stops training with an error after the first epoch.
    for epochs in [1_000_000_000, usize::MAX] {
        let mut net = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(0));
        let config = TrainConfig {
            epochs,
            checkpoint_every: 1,
            checkpoint_path: Some(PathBuf::from("/nonexistent-tapegrad-dir/x.safetensors")),
            ..Default::default()
        };
        let mut epochs_seen = 0;
        let err = tapegrad_nn::train_with(
            &mut net,
            &small_data(8),
            &config,
            &mut StdRng::seed_from_u64(1),
            |s, _| epochs_seen = s.epoch,
        )
        .unwrap_err();
        assert!(matches!(err, NnError::Io { .. }), "{err}");
        assert_eq!(
            epochs_seen, 0,
            "the save of epoch 1 failed before its callback"
        );
    }
}

#[test]
fn labels_far_past_the_class_count_are_errors_not_aborts() {
    // A label of 10^12: the class count came from the largest label and sized allocations.
    let csv = "a,b,label\n0,1,0\n1,0,1000000000000\n1,1,1\n0,0,0\n";
    let data = from_csv_str::<f32>(csv, "big.csv", None).unwrap();
    assert_eq!(data.num_classes(), 1_000_000_000_001);
    // The split groups the rows by the labels present: 3 classes, each split in proportion.
    let (train_part, test_part) =
        train_test_split(&data, 0.5, &mut StdRng::seed_from_u64(0)).unwrap();
    assert_eq!(train_part.len() + test_part.len(), 4);
    // A network cannot predict the label: every entry point says so, naming it.
    let net = Network::<f32>::mlp(&[2, 3, 2], &mut StdRng::seed_from_u64(0));
    for err in [
        net.confusion_matrix(&data).unwrap_err(),
        net.accuracy(&data).unwrap_err(),
        net.loss(&data, Loss::Auto).unwrap_err(),
    ] {
        assert!(
            err.to_string()
                .contains("label 1000000000000 of row 1 is out of range"),
            "{err}"
        );
    }
    // usize::MAX wrapped the class count to 2.
    let csv = "a,label\n0,18446744073709551615\n1,0\n";
    let err = from_csv_str::<f32>(csv, "max.csv", None).unwrap_err();
    assert!(
        err.to_string().contains("class count would overflow"),
        "{err}"
    );
    // The confusion matrix of a huge class count is an error, not an abort.
    let err = tapegrad_nn::ConfusionMatrix::new(&[0], &[0], 1 << 40).unwrap_err();
    assert!(
        err.to_string().contains("1099511627776 x 1099511627776"),
        "{err}"
    );
}

#[test]
fn every_entry_point_refuses_labels_the_network_cannot_predict() {
    // Network::loss returned 0.63 for label 5 on a one-output network, while train refused it.
    let x = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], &[2, 2]).unwrap();
    let data = Dataset::classification(x, vec![0, 5]).unwrap();
    let mut net = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(0));
    let expected = "label 5 of row 1 is out of range: the model's 1 output(s) predict 2 classes";
    let errors = [
        net.loss(&data, Loss::Auto).unwrap_err(),
        net.loss(&data, Loss::MeanSquaredError).unwrap_err(),
        net.accuracy(&data).unwrap_err(),
        net.confusion_matrix(&data).unwrap_err(),
        train(
            &mut net,
            &data,
            &TrainConfig::default(),
            &mut StdRng::seed_from_u64(0),
        )
        .unwrap_err(),
    ];
    for err in errors {
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn values_that_overflow_f32_are_refused() {
    // "1e39" loaded as inf while "inf" was refused.
    let csv = "a,label\n1e39,0\n1,1\n";
    let err = from_csv_str::<f32>(csv, "big.csv", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "big.csv:2:1: \"1e39\" overflows f32 (it would load as infinity)"
    );
    assert!(from_csv_str::<f64>(csv, "big.csv", None).is_ok());
    // A learning rate of 1e39 passed for f32 and every parameter became NaN.
    let data = small_data(8);
    let mut net = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(0));
    let before = params_of(&net);
    let config = TrainConfig {
        learning_rate: 1e39,
        ..Default::default()
    };
    let err = train(&mut net, &data, &config, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(err.to_string().contains("1e39 overflows f32"), "{err}");
    assert_eq!(params_of(&net), before);
    // The same for the optimizer's own settings.
    let adam = OptimizerKind::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 1e40,
    };
    assert!(Optimizer::<f32>::new(adam).is_err());
    assert!(Optimizer::<f64>::new(adam).is_ok());
}

#[test]
fn inconsistent_datasets_are_refused_wherever_they_are_used() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut net = Network::<f32>::mlp(&[2, 3, 1], &mut rng);
    let before = params_of(&net);
    let config = TrainConfig::default();
    // 64 rows with 63 labels panicked in train; 65 trained and returned Ok.
    for labels in [63, 65] {
        let mut d = small_data(64);
        d.y = Targets::Classes {
            labels: (0..labels).map(|i| i % 2).collect(),
            num_classes: 2,
        };
        let msg = format!("64 rows of features but {labels} labels");
        for err in [
            train(&mut net, &d, &config, &mut rng).unwrap_err(),
            train_test_split(&d, 0.25, &mut rng).unwrap_err(),
            net.accuracy(&d).unwrap_err(),
            net.loss(&d, Loss::Auto).unwrap_err(),
            d.subset(&[0, 1]).unwrap_err(),
            tapegrad_nn::Standardizer::fit(&d.x)
                .unwrap()
                .transform_dataset(&d)
                .unwrap_err(),
        ] {
            assert!(err.to_string().contains(&msg), "{err}");
        }
    }
    assert_eq!(params_of(&net), before);
    // A label >= num_classes panicked in train_test_split.
    let mut d = small_data(6);
    d.y = Targets::Classes {
        labels: vec![0, 1, 2, 0, 1, 2],
        num_classes: 2,
    };
    let err = train_test_split(&d, 0.5, &mut rng).unwrap_err();
    assert!(
        err.to_string()
            .contains("label 2 of row 2 is not below num_classes 2"),
        "{err}"
    );
    // 2 labels for 3 rows silently dropped a row.
    let mut d = small_data(3);
    d.y = Targets::Classes {
        labels: vec![0, 1],
        num_classes: 2,
    };
    assert!(train_test_split(&d, 0.5, &mut rng).is_err());
    // Regression targets of the wrong row count.
    let mut d = Dataset::regression(Tensor::<f32>::zeros(&[4, 2]), Tensor::zeros(&[4, 1])).unwrap();
    d.y = Targets::Values(Tensor::zeros(&[3, 1]));
    assert!(
        d.validate()
            .unwrap_err()
            .to_string()
            .contains("targets of shape [3, 1]")
    );
}

#[test]
fn optimizer_state_of_the_wrong_shape_is_refused() {
    let mut params = ParamStore::<f32>::new();
    let w = params.insert("w", Tensor::zeros(&[3]));
    let mut opt = Optimizer::<f32>::new(OptimizerKind::sgd_momentum(0.9)).unwrap();
    let err = opt
        .set_state(
            &params,
            w,
            Some(ParamState {
                step: 1,
                first: Some(Tensor::zeros(&[2])),
                second: None,
            }),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid data for optimizer set_state: the first moment of parameter w has shape [2], \
         the parameter [3]"
    );
    assert!(opt.state(w).is_none(), "nothing was stored");
    // State this optimizer does not keep, and a step count no run reaches.
    let bad = [
        ParamState {
            step: 1,
            first: Some(Tensor::zeros(&[3])),
            second: Some(Tensor::zeros(&[3])),
        },
        ParamState {
            step: u64::MAX,
            first: Some(Tensor::zeros(&[3])),
            second: None,
        },
    ];
    for st in bad {
        assert!(opt.set_state(&params, w, Some(st)).is_err());
    }
    // A parameter replaced by one of another shape after its state was made: the next step is
    // refused instead of updating part of it.
    let g = Tensor::ones(&[3]);
    let gs = every(&params, &g);
    opt.step(&mut params, &gs, 0.1).unwrap();
    *params.get_mut(w).unwrap().value_mut().unwrap() = Tensor::zeros(&[4]);
    let g4 = Tensor::ones(&[4]);
    let gs = every(&params, &g4);
    let err = opt.step(&mut params, &gs, 0.1).unwrap_err();
    assert!(
        err.to_string()
            .contains("parameter w in optimizer step: has shape [4], its first moment [3]"),
        "{err}"
    );
    assert_eq!(params[w].to_vec(), vec![0.0; 4]);
    let mut other = ParamStore::<f32>::new();
    let v = other.insert("v", Tensor::zeros(&[3]));
    assert!(
        opt.set_state(&params, v, None).is_err(),
        "an id of another store"
    );
}

#[test]
fn ids_belong_to_the_store_and_network_that_made_them() {
    // Two stores, each with one parameter: their first ids used to compare equal.
    let mut enc = ParamStore::<f64>::new();
    let mut dec = ParamStore::<f64>::new();
    let e = enc.insert("enc.w", Tensor::scalar(0.5));
    let d = dec.insert("dec.w", Tensor::scalar(-0.5));
    assert_ne!(e, d);
    assert!(dec.get(e).is_none() && !dec.contains(e) && enc.contains(e));
    let caught = std::panic::catch_unwind(|| dec[e].item().unwrap());
    assert!(
        caught.is_err(),
        "indexing with another store's id panics, as documented"
    );
    // A clone answers to the same ids.
    assert_eq!(enc.clone()[e].item().unwrap(), 0.5);
    // One Adam over both stores: the same as one optimizer per store.
    let (ge, gd) = (Tensor::scalar(1.0), Tensor::scalar(2.0));
    let run = |shared: bool| {
        let (mut enc, mut dec) = (enc.clone(), dec.clone());
        let mut a = Optimizer::<f64>::new(OptimizerKind::adam()).unwrap();
        let mut b = Optimizer::<f64>::new(OptimizerKind::adam()).unwrap();
        for _ in 0..2 {
            let gs = every(&enc, &ge);
            a.step(&mut enc, &gs, 0.1).unwrap();
            let opt = if shared { &mut a } else { &mut b };
            let gs = every(&dec, &gd);
            opt.step(&mut dec, &gs, 0.1).unwrap();
        }
        (enc[e].item().unwrap(), dec[d].item().unwrap())
    };
    let (enc_w, dec_w) = run(true);
    assert_eq!((enc_w, dec_w), run(false));
    // Two Adam steps of lr 0.1 with a constant gradient move each weight by 0.2.
    assert!((dec_w - -0.7).abs() < 1e-6, "{dec_w}");
    // Node ids of another network are refused by layer, set_output, activations and node.
    let mut rng = StdRng::seed_from_u64(0);
    let mut a = Network::<f32>::mlp(&[2, 3, 1], &mut rng);
    let b = Network::<f32>::mlp(&[2, 3, 1], &mut rng);
    let foreign = b.find_node("h1").unwrap();
    assert!(a.find_node("h1").unwrap() != foreign);
    assert!(a.node(foreign).is_none());
    assert!(a.layer(&[foreign], 2, Activation::Tanh, &mut rng).is_err());
    assert!(a.set_output(foreign).is_err());
    let x = Tensor::zeros(&[1, 2]);
    let err = a.activations(&x, foreign).unwrap_err();
    assert!(
        err.to_string().contains("not part of this network"),
        "{err}"
    );
}

/// A small network with a checkpoint after one epoch of `optimizer`.
fn checkpointed(optimizer: OptimizerKind, dir: &std::path::Path) -> (Network<f32>, PathBuf) {
    let mut net = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(0));
    let config = TrainConfig {
        epochs: 1,
        optimizer,
        ..Default::default()
    };
    let mut state = TrainState::new(&config, &mut StdRng::seed_from_u64(0)).unwrap();
    train_from(&mut net, &small_data(8), &config, &mut state, |_, _| {}).unwrap();
    let path = dir.join("ck.safetensors");
    save_checkpoint(&path, &net, &state).unwrap();
    (net, path)
}

/// Rewrites a safetensors file with `edit` applied to its tensors and metadata.
fn rewrite(
    path: &std::path::Path,
    edit: impl FnOnce(
        &mut Vec<(String, Vec<u8>, Vec<usize>)>,
        &mut std::collections::HashMap<String, String>,
    ),
) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap_or_default();
    let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec(), v.shape().to_vec()))
        .collect();
    edit(&mut tensors, &mut meta);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, b, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

fn load_err(path: &std::path::Path) -> String {
    let mut fresh = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(5));
    let before = params_of(&fresh);
    let err = load_checkpoint(path, &mut fresh).unwrap_err().to_string();
    assert_eq!(
        params_of(&fresh),
        before,
        "a refused checkpoint changes nothing"
    );
    err
}

#[test]
fn checkpoints_with_missing_or_lying_state_are_refused() {
    let dir = temp_dir("state");
    // A missing Adam moment loaded Ok and restarted at zero.
    let (_, path) = checkpointed(OptimizerKind::adam(), &dir);
    rewrite(&path, |t, _| {
        t.retain(|(n, _, _)| n != "__optimizer.second.h1.weight")
    });
    let err = load_err(&path);
    assert!(
        err.contains("tensor __optimizer.second.h1.weight is missing: Adam keeps it"),
        "{err}"
    );
    // A step count of u64::MAX made the next Adam step divide by zero.
    let (_, path) = checkpointed(OptimizerKind::adam(), &dir);
    rewrite(&path, |_, m| {
        m.insert("optimizer.steps".into(), u64::MAX.to_string());
    });
    let err = load_err(&path);
    assert!(
        err.contains("\"optimizer.steps\": step count 18446744073709551615 is past 2^53"),
        "{err}"
    );
    // A bad setting names the file and the key.
    let (_, path) = checkpointed(OptimizerKind::adam(), &dir);
    rewrite(&path, |_, m| {
        m.insert("optimizer.beta1".into(), "1.5".into());
    });
    let err = load_err(&path);
    assert!(
        err.starts_with(&format!("checkpoint {}", path.display())),
        "{err}"
    );
    assert!(
        err.contains("metadata key \"optimizer.beta1\": must lie in [0, 1), got 1.5"),
        "{err}"
    );
    // An unknown __optimizer.* tensor was ignored while other unknown names were refused.
    let (_, path) = checkpointed(OptimizerKind::sgd_momentum(0.9), &dir);
    rewrite(&path, |t, _| {
        t.push(("__optimizer.first.nope".into(), vec![0; 4], vec![1]));
    });
    let err = load_err(&path);
    assert!(
        err.contains("unexpected tensor __optimizer.first.nope"),
        "{err}"
    );
    let mut net = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(5));
    assert!(
        load_params(&path, &mut net).is_err(),
        "the same rule for parameters alone"
    );
    // State the optimizer does not keep.
    let (_, path) = checkpointed(OptimizerKind::sgd_momentum(0.9), &dir);
    rewrite(&path, |t, _| {
        t.push(("__optimizer.second.h1.bias".into(), vec![0; 12], vec![3]));
    });
    let err = load_err(&path);
    assert!(
        err.contains("__optimizer.second.h1.bias is not state SGD with momentum keeps"),
        "{err}"
    );
    // The intact file still loads and resumes.
    let (net, path) = checkpointed(OptimizerKind::adam(), &dir);
    let mut fresh = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(5));
    let state = load_checkpoint(&path, &mut fresh).unwrap();
    assert_eq!(params_of(&fresh), params_of(&net));
    let w = fresh.params.find("h1.weight").unwrap();
    assert_eq!(state.optimizer.state(w).unwrap().step, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn temps_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn concurrent_saves_to_one_path_each_land_whole() {
    // Two threads of one process shared a temporary name: 40% of saves failed and a reader saw
    // a damaged file. Now 4 writers and a reader: every save succeeds, every read is whole.
    let dir = temp_dir("concurrent");
    let path = dir.join("model.bin");
    let versions: Vec<Vec<u8>> = (0..4u8).map(|k| vec![k; 64 * 1024 + k as usize]).collect();
    write_atomic(&path, &versions[0]).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    versions.contains(&bytes),
                    "a damaged read of {} bytes",
                    bytes.len()
                );
                reads += 1;
            }
            reads
        });
        let writers: Vec<_> = versions
            .iter()
            .map(|v| s.spawn(|| (0..50).for_each(|_| write_atomic(&path, v).unwrap())))
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    assert!(temps_in(&dir).is_empty(), "{:?}", temps_in(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child side of the kill test: saves two versions in turn until it is killed.
#[test]
fn killed_saver_child() {
    let Ok(path) = std::env::var("TAPEGRAD_KILL_TEST_PATH") else {
        return; // Only runs as the child of the test below.
    };
    let versions = kill_test_versions();
    for i in 0.. {
        write_atomic(std::path::Path::new(&path), &versions[i % 2]).unwrap();
    }
}

fn kill_test_versions() -> [Vec<u8>; 2] {
    [vec![1u8; 4 << 20], vec![2u8; (4 << 20) + 1]]
}

#[test]
fn saves_killed_mid_write_leave_a_whole_file_and_no_temporaries_after_the_next_save() {
    // A process killed with SIGKILL in the middle of saves, ten times: the checkpoint is always
    // one whole version, and the next save removes what the killed one left.
    let dir = temp_dir("killed");
    let path = dir.join("model.safetensors");
    let versions = kill_test_versions();
    write_atomic(&path, &versions[0]).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut left_behind = 0;
    for k in 0..10u64 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "killed_saver_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TAPEGRAD_KILL_TEST_PATH", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150 + 37 * k));
        child.kill().unwrap(); // SIGKILL on Unix: no destructor, no cleanup runs.
        child.wait().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            versions.contains(&bytes),
            "a damaged file of {} bytes",
            bytes.len()
        );
        left_behind += temps_in(&dir).len();
        write_atomic(&path, &versions[1]).unwrap();
        assert!(temps_in(&dir).is_empty(), "{:?}", temps_in(&dir));
    }
    // The kills did land mid-write at least once (each save spends most of its time writing).
    assert!(left_behind > 0, "no kill landed during a save");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same gradient for every parameter of a store.
fn every<E: tapegrad_tensor::Float>(params: &ParamStore<E>, g: &Tensor<E>) -> ParamGrads<E> {
    let mut grads = ParamGrads::new();
    for &id in params.ids() {
        grads.insert(id, g.clone());
    }
    grads
}
