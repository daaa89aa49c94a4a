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
