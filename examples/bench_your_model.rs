//! How to measure what the graph costs for a model of your own, with `tapegrad::harness`: two
//! workloads (a single-head self-attention block and an MLP), each a tapegrad step beside its
//! hand-written floor on the public kernels (`tapegrad::tensor::kernels`), measured at one and
//! two threads with allocations per call; then the profile of one tapegrad step of each
//! (`Tape::profile`), and how its times add up against the step's wall time.
//!
//! Run: `cargo run --release --example bench_your_model [-- --quick]`.

use std::hint::black_box;
use std::time::Instant;

use tapegrad::harness::{CountingAlloc, Harness, Workload};
use tapegrad::prelude::*;
use tapegrad::rand::{SeedableRng, rngs::StdRng};
use tapegrad::tensor::kernels::{gemm, map_in_place};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Single-head self-attention over `b` sequences of `t` tokens of width `d`: Q, K, V = x W,
/// softmax(Q K^T / sqrt d) V, summed; forward and the gradients of the three weights.
struct Attention {
    b: usize,
    t: usize,
    d: usize,
    x: Tensor<f32>,
    w: [Tensor<f32>; 3],
}

impl Attention {
    fn new(b: usize, t: usize, d: usize, rng: &mut StdRng) -> Self {
        let s = 1.0 / (d as f32).sqrt();
        Attention {
            b,
            t,
            d,
            x: Tensor::randn(&[b, t, d], 0.0, 1.0, rng),
            w: [0, 1, 2].map(|_| Tensor::randn(&[d, d], 0.0, s, rng)),
        }
    }

    /// The tapegrad step; returns the loss.
    fn step<'t>(&self, tape: &'t Tape<f32>) -> (Var<'t, f32>, [Var<'t, f32>; 3]) {
        let x = tape.constant(self.x.clone());
        let w = self.w.each_ref().map(|w| tape.var(w.clone()));
        let [q, k, v] = w.map(|w| x.matmul(w).expect("shapes"));
        let scale = 1.0 / (self.d as f32).sqrt();
        let p = q
            .matmul(k.transpose(1, 2).expect("rank 3"))
            .expect("shapes")
            .mul_scalar(scale)
            .softmax(2)
            .expect("axis");
        (p.matmul(v).expect("shapes").sum(), w)
    }
}

/// The same math by hand, with its buffers.
struct AttentionFloor {
    a: Attention,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    p: Vec<f32>,
    dp: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
    dw: [Vec<f32>; 3],
}

impl AttentionFloor {
    fn new(a: Attention) -> Self {
        let (n, tt) = (a.b * a.t * a.d, a.b * a.t * a.t);
        AttentionFloor {
            q: vec![0.0; n],
            k: vec![0.0; n],
            v: vec![0.0; n],
            p: vec![0.0; tt],
            dp: vec![0.0; tt],
            dq: vec![0.0; n],
            dk: vec![0.0; n],
            dv: vec![0.0; n],
            dw: [0, 1, 2].map(|_| vec![0.0; a.d * a.d]),
            a,
        }
    }

    fn step(&mut self) -> f32 {
        let (b, t, d) = (self.a.b, self.a.t, self.a.d);
        let x = self.a.x.as_slice();
        let rows = b * t;
        // Q, K, V: one product each over all b t rows.
        for (w, out) in self.a.w.iter().zip([&mut self.q, &mut self.k, &mut self.v]) {
            gemm(rows, d, d, 1.0, x, false, w.as_slice(), false, 0.0, out).expect("sizes");
        }
        let scale = 1.0 / (d as f32).sqrt();
        let (tt, td) = (t * t, t * d);
        let mut loss = 0.0;
        for s in 0..b {
            let (q, k, v) = (
                &self.q[s * td..][..td],
                &self.k[s * td..][..td],
                &self.v[s * td..][..td],
            );
            let p = &mut self.p[s * tt..][..tt];
            gemm(t, d, t, scale, q, false, k, true, 0.0, p).expect("sizes");
            for row in p.chunks_exact_mut(t) {
                let m = row.iter().fold(f32::MIN, |a, &v| a.max(v));
                row.iter_mut().for_each(|v| *v = (*v - m).exp());
                let z: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= z);
            }
            // loss = sum(P V); dO = 1: dP = 1 V^T (row sums of V), dV = P^T 1.
            let vsum: Vec<f32> = v.chunks_exact(d).map(|r| r.iter().sum()).collect();
            let colsum: Vec<f32> = (0..t).map(|j| (0..t).map(|i| p[i * t + j]).sum()).collect();
            loss += (0..t).map(|j| colsum[j] * vsum[j]).sum::<f32>();
            let dv = &mut self.dv[s * td..][..td];
            for j in 0..t {
                dv[j * d..(j + 1) * d]
                    .iter_mut()
                    .for_each(|g| *g = colsum[j]);
            }
            // dS = P (dP - rowsum(dP P)) with dP[i][j] = vsum[j].
            let ds = &mut self.dp[s * tt..][..tt];
            for i in 0..t {
                let prow = &p[i * t..(i + 1) * t];
                let dot: f32 = prow.iter().zip(&vsum).map(|(a, b)| a * b).sum();
                for j in 0..t {
                    ds[i * t + j] = prow[j] * (vsum[j] - dot) * scale;
                }
            }
            let (dq, dk) = (&mut self.dq[s * td..][..td], &mut self.dk[s * td..][..td]);
            gemm(t, t, d, 1.0, ds, false, k, false, 0.0, dq).expect("sizes");
            gemm(t, t, d, 1.0, ds, true, q, false, 0.0, dk).expect("sizes");
        }
        // dW = x^T dQ (dK, dV): one product each over all rows.
        for (g, dw) in [&self.dq, &self.dk, &self.dv].into_iter().zip(&mut self.dw) {
            gemm(d, rows, d, 1.0, x, true, g, false, 0.0, dw).expect("sizes");
        }
        loss
    }
}

/// An MLP `[n, h, k]` with tanh hidden units and softmax cross-entropy, one gradient.
struct Mlp {
    x: Tensor<f32>,
    labels: Vec<usize>,
    w1: Tensor<f32>,
    w2: Tensor<f32>,
}

impl Mlp {
    fn new(batch: usize, n: usize, h: usize, k: usize, rng: &mut StdRng) -> Self {
        Mlp {
            x: Tensor::randn(&[batch, n], 0.0, 1.0, rng),
            labels: (0..batch).map(|i| i % k).collect(),
            w1: Tensor::randn(&[n, h], 0.0, (1.0 / n as f32).sqrt(), rng),
            w2: Tensor::randn(&[h, k], 0.0, (1.0 / h as f32).sqrt(), rng),
        }
    }

    fn step<'t>(&self, tape: &'t Tape<f32>) -> (Var<'t, f32>, [Var<'t, f32>; 2]) {
        let x = tape.constant(self.x.clone());
        let (w1, w2) = (tape.var(self.w1.clone()), tape.var(self.w2.clone()));
        let h = x.matmul(w1).expect("shapes").tanh();
        let loss = h
            .matmul(w2)
            .expect("shapes")
            .softmax_cross_entropy(&self.labels)
            .expect("labels");
        (loss, [w1, w2])
    }
}

fn mlp_floor(m: &Mlp, bufs: &mut [Vec<f32>; 6]) -> f32 {
    let (b, n) = (m.x.shape()[0], m.x.shape()[1]);
    let (h, k) = (m.w1.shape()[1], m.w2.shape()[1]);
    let [hid, z, dz, dh, dw1, dw2] = bufs;
    gemm(
        b,
        n,
        h,
        1.0,
        m.x.as_slice(),
        false,
        m.w1.as_slice(),
        false,
        0.0,
        hid,
    )
    .expect("sizes");
    map_in_place(hid, |v| v.tanh());
    gemm(b, h, k, 1.0, hid, false, m.w2.as_slice(), false, 0.0, z).expect("sizes");
    let mut loss = 0.0;
    for (r, row) in z.chunks_exact(k).enumerate() {
        let mx = row.iter().fold(f32::MIN, |a, &v| a.max(v));
        let zsum: f32 = row.iter().map(|v| (v - mx).exp()).sum();
        loss += zsum.ln() + mx - row[m.labels[r]];
        for j in 0..k {
            let p = (row[j] - mx).exp() / zsum;
            dz[r * k + j] = (p - f32::from(j == m.labels[r])) / b as f32;
        }
    }
    gemm(h, b, k, 1.0, hid, true, dz, false, 0.0, dw2).expect("sizes");
    gemm(b, k, h, 1.0, dz, false, m.w2.as_slice(), true, 0.0, dh).expect("sizes");
    for (g, &a) in dh.iter_mut().zip(hid.iter()) {
        *g *= 1.0 - a * a;
    }
    gemm(n, b, h, 1.0, m.x.as_slice(), true, dh, false, 0.0, dw1).expect("sizes");
    loss / b as f32
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut rng = StdRng::seed_from_u64(0);
    let (b, t, d) = (8, 32, 64);
    let attention = Attention::new(b, t, d, &mut rng);
    let mut floor = AttentionFloor::new(Attention::new(b, t, d, &mut StdRng::seed_from_u64(0)));
    let mlp = Mlp::new(128, 512, 256, 10, &mut rng);
    let (hh, kk) = (256, 10);
    let mut bufs =
        [128 * hh, 128 * kk, 128 * kk, 128 * hh, 512 * hh, hh * kk].map(|n| vec![0.0; n]);
    let mut tape = Tape::new();
    let mut tape2 = Tape::new();

    // The two computations agree before anything is timed.
    let (loss, _) = attention.step(&tape);
    let want = floor.step();
    assert!((loss.item().unwrap() - want).abs() <= 1e-3 * want.abs().max(1.0));
    let (loss, _) = mlp.step(&tape2);
    assert!((loss.item().unwrap() - mlp_floor(&mlp, &mut bufs)).abs() < 1e-4);

    let mut workloads = vec![
        Workload::new(
            "attention",
            "us/step",
            1e6,
            || {
                tape.clear();
                let (loss, w) = attention.step(&tape);
                let g = tape.backward(loss).unwrap();
                black_box(g[w[0]].as_slice()[0]);
            },
            || {
                black_box(floor.step());
            },
        )
        .what("single-head self-attention, B 8, T 32, D 64, forward + weight gradients")
        .inner(20),
        Workload::new(
            "mlp",
            "us/step",
            1e6,
            || {
                tape2.clear();
                let (loss, w) = mlp.step(&tape2);
                let g = tape2.backward(loss).unwrap();
                black_box(g[w[0]].as_slice()[0]);
            },
            || {
                black_box(mlp_floor(&mlp, &mut bufs));
            },
        )
        .what("MLP 512-256-10, tanh, batch 128, softmax cross-entropy gradient")
        .inner(20),
    ];
    let report = Harness::new()
        .reps(if quick { 3 } else { 11 })
        .run(&mut workloads);
    drop(workloads);
    println!("{}", report.markdown());

    // The profile of one step of each: where the time and the bytes go.
    profile("attention", |tape| {
        let (loss, _) = attention.step(tape);
        drop(tape.backward(loss).unwrap());
    });
    profile("mlp", |tape| {
        let (loss, _) = mlp.step(tape);
        drop(tape.backward(loss).unwrap());
    });
}

/// Prints the profile of one step (after a warm-up) and how its times add up against the
/// step's wall time.
fn profile(name: &str, run: impl Fn(&Tape<f32>)) {
    let mut tape = Tape::new();
    tape.set_profiling(true);
    run(&tape); // warm
    tape.clear();
    let start = Instant::now();
    run(&tape);
    let wall = start.elapsed();
    let p = tape.profile();
    println!("profile of one {name} step:\n{p}");
    println!(
        "the profile's times add up to {:.1} us of the step's {:.1} us wall time ({:.0}%)\n",
        p.total.time().as_secs_f64() * 1e6,
        wall.as_secs_f64() * 1e6,
        100.0 * p.total.time().as_secs_f64() / wall.as_secs_f64()
    );
}
