//! Thread safety: a trained `Network` is `Send + Sync` and predicts from many threads at once
//! with the same results; a `Tape` is `Send` but not `Sync` (one thread records on it; see the
//! `compile_fail` example on `Tape`).

use tapegrad::nn::{self, Network, TrainConfig};
use tapegrad::prelude::*;
use tapegrad::rand::{SeedableRng, rngs::StdRng};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn networks_are_shared_across_threads_for_predict() {
    assert_send_sync::<Network<f32>>();
    assert_send_sync::<Network<f64>>();
    assert_send_sync::<Tensor<f32>>();
    assert_send::<Tape<f32>>();
    let mut rng = StdRng::seed_from_u64(0);
    let data = nn::data::moons::<f32, _>(200, 0.2, &mut rng);
    let mut net = Network::mlp(&[2, 16, 1], &mut rng);
    nn::train(
        &mut net,
        &data,
        &TrainConfig {
            epochs: 20,
            ..Default::default()
        },
        &mut rng,
    )
    .unwrap();
    let expected = net.predict(&data.x).unwrap();
    let net = &net;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|k| {
                let x = data.x.clone();
                s.spawn(move || {
                    let mut last = None;
                    for _ in 0..20 + k {
                        last = Some(net.predict(&x).unwrap());
                    }
                    last.unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), expected);
        }
    });
}

#[test]
fn tapes_move_between_threads() {
    let tape = Tape::<f64>::new();
    let grads = std::thread::spawn(move || {
        let x = tape.var(Tensor::scalar(3.0));
        let g = tape.backward(x * x).unwrap();
        g[x].item().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(grads, 6.0);
}

/// Runs `f` on its own thread and fails the test, instead of hanging it, when `f` has not
/// finished within `secs` seconds.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within {secs} s (a deadlock?)"),
    }
}

/// A large product: 512 x 256 times 256 x 256 is 2^25 multiply-adds, above the 2^24 from which
/// products are split over threads.
fn big_operands() -> (Tensor<f32>, Tensor<f32>) {
    let mut rng = StdRng::seed_from_u64(7);
    (
        Tensor::randn(&[512, 256], 0.0, 1.0, &mut rng),
        Tensor::randn(&[256, 256], 0.0, 1.0, &mut rng),
    )
}

/// A network and data whose every product is split over threads (256 x 784 x 512).
fn big_network() -> (Network<f32>, nn::Dataset<f32>) {
    let mut rng = StdRng::seed_from_u64(3);
    let x = Tensor::rand_uniform(&[256, 784], 0.0, 1.0, &mut rng);
    let labels = (0..256).map(|i| i % 10).collect();
    let data = nn::Dataset::classification(x, labels).unwrap();
    (Network::mlp(&[784, 512, 10], &mut rng), data)
}

fn train_big() -> Vec<f32> {
    let (mut net, data) = big_network();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 128,
        shuffle: false,
        ..Default::default()
    };
    nn::train(&mut net, &data, &config, &mut StdRng::seed_from_u64(1)).unwrap();
    net.params
        .iter()
        .flat_map(|(_, p)| p.value().to_vec())
        .collect()
}

#[test]
fn two_threads_multiplying_large_matrices_at_once_finish() {
    // The reproduction: with two worker threads, two callers at once used to lose a
    // task in the hand-written pool and hang forever.
    tapegrad::tensor::set_num_threads(2);
    within(120, "two threads of large products", || {
        let (a, b) = big_operands();
        let expected = a.matmul(&b).unwrap();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..10 {
                        assert_eq!(a.matmul(&b).unwrap(), expected);
                    }
                });
            }
        });
    });
}

#[test]
fn eight_threads_predicting_multiplying_and_training_at_once_match_one_thread() {
    // References at one thread; then every kind of parallel work at once, split over two.
    tapegrad::tensor::set_num_threads(1);
    let (a, b) = big_operands();
    let product = a.matmul(&b).unwrap();
    let (net, data) = big_network();
    let prediction = net.predict(&data.x).unwrap();
    let trained = train_big();
    let big = Tensor::<f32>::rand_uniform(&[1 << 17], -3.0, 3.0, &mut StdRng::seed_from_u64(9));
    let expd = big.exp();
    tapegrad::tensor::set_num_threads(2);
    within(300, "eight threads of mixed parallel work", move || {
        let (net, x) = (&net, &data.x);
        std::thread::scope(|s| {
            for k in 0..8 {
                let (a, b, product, prediction, trained, big, expd) =
                    (&a, &b, &product, &prediction, &trained, &big, &expd);
                s.spawn(move || match k % 4 {
                    0 => (0..3).for_each(|_| assert_eq!(&net.predict(x).unwrap(), prediction)),
                    1 => (0..6).for_each(|_| assert_eq!(&a.matmul(b).unwrap(), product)),
                    2 => assert_eq!(&train_big(), trained),
                    _ => (0..6).for_each(|_| assert_eq!(&big.exp(), expd)),
                });
            }
        });
    });
}

#[test]
fn products_inside_parallel_jobs_finish_and_match() {
    // Nested parallel work: each job of a `run_parallel` call runs a large product (itself
    // split over the pool) and its own nested `run_parallel`.
    tapegrad::tensor::set_num_threads(2);
    let (a, b) = big_operands();
    let expected = a.matmul(&b).unwrap();
    let results = within(120, "nested parallel jobs", move || {
        let slots: Vec<std::sync::Mutex<Option<Tensor<f32>>>> =
            (0..4).map(|_| std::sync::Mutex::new(None)).collect();
        let hits = std::sync::atomic::AtomicUsize::new(0);
        let jobs: Vec<Box<dyn Fn() + Sync>> = (0..4)
            .map(|i| {
                let (a, b, slots, hits) = (&a, &b, &slots, &hits);
                Box::new(move || {
                    let inner = || {
                        hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    };
                    tapegrad::tensor::run_parallel(&[&inner, &inner, &inner]);
                    *slots[i].lock().unwrap() = Some(a.matmul(b).unwrap());
                }) as Box<dyn Fn() + Sync>
            })
            .collect();
        let refs: Vec<&(dyn Fn() + Sync)> = jobs.iter().map(|j| j.as_ref()).collect();
        tapegrad::tensor::run_parallel(&refs);
        drop(refs);
        drop(jobs);
        assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 12);
        slots
            .into_iter()
            .map(|s| s.into_inner().unwrap().unwrap())
            .collect::<Vec<_>>()
    });
    for r in results {
        assert_eq!(r, expected);
    }
}

#[test]
fn a_panicking_parallel_job_reaches_the_caller_and_the_pool_still_works() {
    let ok = || {};
    let bad = || panic!("job failed on purpose");
    let caught = std::panic::catch_unwind(|| tapegrad::tensor::run_parallel(&[&ok, &bad, &ok]));
    assert!(caught.is_err());
    tapegrad::tensor::set_num_threads(2);
    let (a, b) = big_operands();
    let single = within(60, "a product after a panicked job", move || {
        a.matmul(&b).unwrap()
    });
    assert_eq!(single.shape(), &[512, 256]);
}

#[test]
fn every_parallel_job_runs_exactly_once_whoever_takes_it() {
    // The caller takes any job no worker has started; a job must never run twice or not at
    // all, whichever thread wins it. Four callers at once, many small calls each.
    within(60, "exactly-once jobs", || {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let callers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let counts: Vec<AtomicUsize> = (0..6).map(|_| AtomicUsize::new(0)).collect();
                    for _ in 0..2000 {
                        let jobs: Vec<Box<dyn Fn() + Sync + '_>> = counts
                            .iter()
                            .map(|c| {
                                Box::new(move || {
                                    c.fetch_add(1, Ordering::Relaxed);
                                }) as Box<dyn Fn() + Sync>
                            })
                            .collect();
                        let refs: Vec<&(dyn Fn() + Sync)> =
                            jobs.iter().map(|j| j.as_ref()).collect();
                        tapegrad::tensor::run_parallel(&refs);
                    }
                    counts
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for c in callers {
            assert_eq!(c.join().unwrap(), vec![2000; 6]);
        }
    });
}

#[test]
fn elementwise_backwards_and_optimizer_steps_split_over_threads_match_one_thread_bit_for_bit() {
    // 257 x 258 = 66,306 elements: above the split of cheap elementwise work (2^14 per
    // thread), and not a multiple of the thread count. x gets sigmoid's gradient in a new
    // slot, then tanh's and exp's added in place; SGD, SGD with momentum and Adam then update a
    // parameter of that size.
    let run = |threads: usize| {
        tapegrad::tensor::set_num_threads(threads);
        let mut rng = StdRng::seed_from_u64(9);
        let x0 = Tensor::<f32>::randn(&[257, 258], 0.0, 1.0, &mut rng);
        let tape = Tape::new();
        let x = tape.var(x0.clone());
        let y = (x.sigmoid() * 2.0 + x.tanh() + (x * 0.1).exp()).sum();
        let grads = tape.backward(y).unwrap();
        let g = grads[x].clone();
        let mut params = nn::ParamStore::new();
        let id = params.insert("w", x0);
        let mut pg = nn::ParamGrads::new();
        pg.insert(id, g.clone());
        drop(grads);
        let mut opt = nn::Optimizer::new(nn::OptimizerKind::sgd()).unwrap();
        opt.step(&mut params, &pg, 0.1).unwrap();
        // Momentum and Adam keep state cut like the parameter: two steps each, so the state
        // written by the first is read by the second. An empty parameter rides along.
        let empty = params.insert("empty", Tensor::zeros(&[0, 3]));
        pg.insert(empty, Tensor::zeros(&[0, 3]));
        for kind in [
            nn::OptimizerKind::sgd_momentum(0.9),
            nn::OptimizerKind::adam(),
        ] {
            let mut opt = nn::Optimizer::new(kind).unwrap();
            opt.step(&mut params, &pg, 0.01).unwrap();
            opt.step(&mut params, &pg, 0.01).unwrap();
        }
        (g.to_vec(), params[id].to_vec())
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.0.len(), 257 * 258);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&one.0), bits(&two.0), "gradients");
    assert_eq!(bits(&one.1), bits(&two.1), "updated parameters");
    assert!(one.0.iter().all(|v| v.is_finite() && *v != 0.0));
}
