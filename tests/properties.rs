//! Property tests (proptest): random graphs pass gradcheck; random and incompatible shapes fed
//! to every fallible tensor and Var method give Ok or a clear Err, never a panic; the CSV, IDX
//! and safetensors readers survive truncated, corrupted and random bytes.
//!
//! Case counts are set per block below and listed in RELIABILITY.md.

use proptest::prelude::*;
use tapegrad::autodiff::{Tape, Var, gradcheck};
use tapegrad::nn::{self, Network};
use tapegrad::rand::{SeedableRng, rngs::StdRng};
use tapegrad::tensor::{Tensor, Transpose};

/// A shape of rank 0..=3 with sizes 1..=3.
fn base_shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=3, 0..=3)
}

/// A shape that broadcasts to `base`: some leading axes dropped, some sizes replaced by 1.
fn compatible(base: Vec<usize>) -> impl Strategy<Value = Vec<usize>> {
    let rank = base.len();
    (0..=rank, prop::collection::vec(any::<bool>(), rank)).prop_map(move |(drop, ones)| {
        base.iter()
            .zip(&ones)
            .skip(drop)
            .map(|(&d, &one)| if one { 1 } else { d })
            .collect()
    })
}

fn values(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, -1.5, 1.5, &mut StdRng::seed_from_u64(seed))
}

/// One step of a random program: an op code and operand picks (taken modulo the pool size).
type Step = (u8, usize, usize);

/// Runs a random program over the pool of vars; every op keeps values in a safe domain
/// (positive before ln, sqrt, powf and division) so central differences are meaningful.
fn run<'t>(
    tape: &'t Tape<f64>,
    inputs: &[Var<'t, f64>],
    steps: &[Step],
) -> tapegrad::autodiff::Result<Var<'t, f64>> {
    let mut pool: Vec<Var<'t, f64>> = inputs.to_vec();
    for &(op, i, j) in steps {
        let a = pool[i % pool.len()];
        let b = pool[j % pool.len()];
        // A reduction earlier in the program may have left `b` a shape that does not broadcast
        // with `a`; the binary ops then combine `a` with itself.
        let b = if tapegrad::tensor::broadcast_shape("pick", &a.shape(), &b.shape()).is_ok() {
            b
        } else {
            a
        };
        let positive = |v: Var<'t, f64>| v.softplus() + 0.5;
        let next = match op % 16 {
            0 => a.add(b)?,
            1 => a.sub(b)?,
            2 => a.mul(b)?,
            3 => a.div(positive(b))?,
            4 => a.sigmoid(),
            5 => a.tanh(),
            6 => a.tanh().exp(),
            7 => a.softplus(),
            8 => a.square(),
            9 => positive(a).ln(),
            10 => positive(a).sqrt(),
            11 => positive(a).powf(1.7),
            12 => 2.0 - 0.5 * a,
            13 => 1.0 / positive(a),
            14 => {
                let rank = a.shape().len();
                if rank == 0 {
                    a.neg()
                } else {
                    a.softmax(j % rank)?
                }
            }
            _ => {
                let rank = a.shape().len();
                if rank == 0 {
                    a.mean()
                } else {
                    a.sum_axis(j % rank, op % 2 == 0)?
                }
            }
        };
        pool.push(next);
    }
    // A fixed weighting of every output element, so each gradient entry matters.
    let last = *pool.last().expect("inputs exist");
    let w = tape.constant(values(&last.shape(), 4242));
    Ok(last.mul(w)?.sum())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_pass_gradcheck(
        (shapes, steps, seed) in base_shape().prop_flat_map(|base| {
            (
                prop::collection::vec(compatible(base), 1..=3),
                prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..=6),
                any::<u64>(),
            )
        })
    ) {
        let inputs: Vec<Tensor<f64>> = shapes.iter().enumerate().map(|(k, s)| values(s, seed ^ k as u64)).collect();
        let report = gradcheck(&inputs, |tape, vars| run(tape, vars, &steps)).unwrap();
        prop_assert!(report.passed(1e-5), "{:?} {:?}: {:?}", shapes, steps, report);
    }
}

fn any_shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..=4, 0..=4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fallible_tensor_methods_never_panic(
        sa in any_shape(), sb in any_shape(), sc in any_shape(),
        axis in 0usize..6, start in 0usize..6, len in 0usize..6,
        idx in prop::collection::vec(0usize..6, 0..5),
    ) {
        let a = Tensor::<f32>::ones(&sa);
        let b = Tensor::<f32>::full(&sb, 2.0);
        let _ = a.add(&b);
        let _ = a.sub(&b);
        let _ = a.mul(&b);
        let _ = a.div(&b);
        let _ = a.maximum(&b);
        let _ = a.pow(&b);
        let _ = a.lt(&b);
        let _ = a.matmul(&b);
        let _ = a.matmul_t(Transpose::Yes, &b, Transpose::No);
        let _ = a.matmul_t(Transpose::No, &b, Transpose::Yes);
        let _ = a.reshape(&sc);
        let _ = a.broadcast_to(&sb);
        let _ = a.sum_to(&sb);
        let _ = a.sum_axis(axis, true);
        let _ = a.mean_axis(axis, false);
        let _ = a.max_axis(axis, false);
        let _ = a.argmax_axis(axis, true);
        let _ = a.softmax(axis);
        let _ = a.log_softmax(axis);
        let _ = a.narrow(axis, start, len);
        let _ = a.select_rows(&idx);
        let _ = a.gather(&idx);
        let _ = a.get(&idx);
        let _ = a.item();
        let _ = Tensor::concat(&[&a, &b], axis);
        let _ = Tensor::<f32>::one_hot(&idx, len);
        let _ = Tensor::<f32>::from_vec(vec![0.0; start], &sc);
        let mut c = a.clone();
        let _ = c.add_assign(&b);
        let _ = c.index_add_rows(&idx, &b);
        let _ = a.t();
        // When an elementwise op succeeds, its shape is the broadcast of the operands'.
        if let Ok(s) = a.add(&b) {
            let expected = tapegrad::tensor::broadcast_shape("add", &sa, &sb).unwrap();
            prop_assert_eq!(s.shape(), expected.as_slice());
        }
    }

    #[test]
    fn fallible_var_methods_never_panic(
        sa in any_shape(), sb in any_shape(), sc in any_shape(),
        axis in 0usize..6, start in 0usize..6, len in 0usize..6,
        idx in prop::collection::vec(0usize..6, 0..5),
    ) {
        let tape = Tape::<f32>::new();
        let a = tape.var(Tensor::ones(&sa));
        let b = tape.var(Tensor::full(&sb, 2.0));
        let results = [
            a.add(b), a.sub(b), a.mul(b), a.div(b), a.matmul(b), a.reshape(&sc),
            a.broadcast_to(&sb), a.sum_axis(axis, false), a.mean_axis(axis, true),
            a.max_axis(axis, false), a.softmax(axis), a.log_softmax(axis),
            a.narrow(axis, start, len), a.select_rows(&idx), Var::concat(&[a, b], axis),
            a.mse(b), a.binary_cross_entropy_with_logits(b), a.softmax_cross_entropy(&idx),
        ];
        for r in results.into_iter().flatten() {
            // Whatever was recorded can be differentiated when it is a scalar, else it says so.
            match tape.backward(r) {
                Ok(g) => prop_assert_eq!(g[a].shape(), sa.as_slice()),
                Err(e) => prop_assert!(e.to_string().contains("exactly one element"), "{}", e),
            }
        }
        let other = Tape::<f32>::new();
        let foreign = other.var(Tensor::ones(&sb));
        prop_assert!(a.add(foreign).is_err());
    }
}

fn valid_csv() -> String {
    "a,b,label\n1.5,2,0\n-3,4e-2,1\n0,0,2\n".to_string()
}

fn valid_idx(gz: bool) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 2];
    b.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    if gz {
        use std::io::Write;
        let mut e = flate2_encoder();
        e.write_all(&b).unwrap();
        e.finish().unwrap()
    } else {
        b
    }
}

fn flate2_encoder() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
}

fn valid_checkpoint() -> (Network<f32>, Vec<u8>) {
    let net = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(0));
    let path =
        std::env::temp_dir().join(format!("tapegrad-prop-{}.safetensors", std::process::id()));
    nn::checkpoint::save_params(&path, &net).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    (net, bytes)
}

fn load_bytes(net: &mut Network<f32>, bytes: &[u8], tag: u64) -> Result<(), nn::NnError> {
    let path = std::env::temp_dir().join(format!(
        "tapegrad-prop-{}-{tag}.safetensors",
        std::process::id()
    ));
    std::fs::write(&path, bytes).unwrap();
    let r = nn::checkpoint::load_params(&path, net);
    std::fs::remove_file(&path).unwrap();
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn csv_reader_survives_damage(cut in 0usize..40, pos in 0usize..40, byte in any::<u8>(), junk in ".{0,60}") {
        let good = valid_csv();
        let cut = cut.min(good.len());
        let _ = nn::data::from_csv_str::<f32>(&good[..cut], "t.csv", None);
        let mut bytes = good.clone().into_bytes();
        let p = pos % bytes.len();
        bytes[p] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = nn::data::from_csv_str::<f32>(&text, "t.csv", None);
        }
        let _ = nn::data::from_csv_str::<f64>(&junk, "t.csv", Some("label"));
    }

    #[test]
    fn idx_reader_survives_damage(gz in any::<bool>(), cut in 0usize..64, pos in 0usize..64, byte in any::<u8>(),
                                  junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let good = valid_idx(gz);
        let _ = nn::data::parse_idx(&good[..cut.min(good.len())], "t.idx");
        let mut bad = good.clone();
        let p = pos % bad.len();
        bad[p] = byte;
        let _ = nn::data::parse_idx(&bad, "t.idx");
        let _ = nn::data::parse_idx(&junk, "t.idx");
        // A header claiming a huge array over a few bytes is refused, not allocated.
        let mut lying = vec![0, 0, 8, 3];
        for _ in 0..3 { lying.extend_from_slice(&0xffff_fff0u32.to_be_bytes()); }
        lying.extend_from_slice(&junk);
        prop_assert!(nn::data::parse_idx(&lying, "t.idx").is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn checkpoint_reader_survives_damage(cut in 0usize..400, pos in 0usize..400, byte in any::<u8>(),
                                         junk in prop::collection::vec(any::<u8>(), 0..200), tag in any::<u64>()) {
        let (net, good) = valid_checkpoint();
        let mut target = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(1));
        let cut = cut.min(good.len() - 1);
        prop_assert!(load_bytes(&mut target, &good[..cut], tag).is_err());
        let mut bad = good.clone();
        let p = pos % bad.len();
        bad[p] = byte;
        let _ = load_bytes(&mut target, &bad, tag);
        let _ = load_bytes(&mut target, &junk, tag);
        // The intact file still loads exactly.
        load_bytes(&mut target, &good, tag).unwrap();
        for ((_, a), (_, b)) in net.params.iter().zip(target.params.iter()) {
            prop_assert_eq!(a.value(), b.value());
        }
    }
}
