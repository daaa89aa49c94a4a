//! The performance workloads W1-W5 of issue 6, each as tapegrad code and as the hand-written
//! floor (the same math on the same matrixmultiply kernels, preallocated buffers, no graph).
//! Shared by the criterion benches and `examples/bench_report.rs`.
#![allow(dead_code)] // each user takes what it needs

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad::nn::{Network, Optimizer, OptimizerKind};
use tapegrad::prelude::*;

/// C = A op(B) written into `c` (`m x n`), on the raw kernel. `tb` reads B (`n x k` stored)
/// transposed; `ta` reads A (`k x m` stored) transposed. At two or more threads
/// (`tapegrad::tensor::num_threads()`), a product of at least 2^24 multiply-adds is split into
/// row blocks, one per thread, run on the persistent worker threads tapegrad uses
/// (`tapegrad::tensor::run_parallel`), with the threshold tapegrad uses: the floor uses the
/// second core exactly as well as tapegrad can.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    beta: f32,
    c: &mut [f32],
) {
    let threads = tapegrad::tensor::num_threads();
    if threads < 2 || m < threads || m * k * n < 1 << 24 {
        gemm_rows(0, m, k, n, a, ta, b, tb, beta, c);
        return;
    }
    let per = m.div_ceil(threads);
    // Each job owns one block of C's rows, handed over through a mutex (taken once).
    let blocks: Vec<std::sync::Mutex<&mut [f32]>> =
        c.chunks_mut(per * n).map(std::sync::Mutex::new).collect();
    let jobs: Vec<Box<dyn Fn() + Sync + '_>> = blocks
        .iter()
        .enumerate()
        .map(|(t, block)| {
            Box::new(move || {
                let mut block = block.lock().expect("one job per block");
                let rows = block.len() / n;
                gemm_rows(t * per, rows, k, n, a, ta, b, tb, beta, &mut block);
            }) as Box<dyn Fn() + Sync + '_>
        })
        .collect();
    let refs: Vec<&(dyn Fn() + Sync)> = jobs.iter().map(|j| j.as_ref()).collect();
    tapegrad::tensor::run_parallel(&refs);
}

/// Rows `r0..r0 + m` of C = op(A) op(B) (A has `total` rows when not transposed) into `c`.
#[allow(clippy::too_many_arguments)]
fn gemm_rows(
    r0: usize,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    beta: f32,
    c: &mut [f32],
) {
    // op(A) is (rows x k): row i starts at i * rsa; stored A is k x (all rows) when transposed.
    let all_rows = a.len() / k;
    let (rsa, csa) = if ta {
        (1, all_rows as isize)
    } else {
        (k as isize, 1)
    };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    assert!(c.len() >= m * n && r0 + m <= all_rows);
    // SAFETY: the slices hold the matrices these strides describe; rows r0..r0 + m of op(A)
    // lie inside `a`, and `c` holds the m x n block.
    unsafe {
        f32::gemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr().offset(r0 as isize * rsa),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

// ---------------------------------------------------------------------------------------------
// W1: the scalar chain.

pub const CHAIN_STEPS: usize = 10_000;

pub fn chain_tapegrad(tape: &mut Tape<f32>, check_finite: bool) -> (f32, f32, f32) {
    tape.clear();
    tape.set_check_finite(check_finite);
    let mut x = tape.var(Tensor::scalar(0.5));
    let a = tape.var(Tensor::scalar(1.0001));
    let b = tape.var(Tensor::scalar(0.0001));
    for _ in 0..CHAIN_STEPS {
        x = (x * a + b).sigmoid();
    }
    let grads = tape.backward(x).expect("scalar loss");
    (
        x.item().expect("scalar"),
        grads[a].as_slice()[0],
        grads[b].as_slice()[0],
    )
}

pub fn chain_floor(xs: &mut Vec<f32>) -> (f32, f32, f32) {
    let (a, b) = (1.0001f32, 0.0001f32);
    xs.clear();
    let mut x = 0.5f32;
    xs.push(x);
    for _ in 0..CHAIN_STEPS {
        x = sigmoid(x * a + b);
        xs.push(x);
    }
    let (mut gx, mut ga, mut gb) = (1.0f32, 0.0f32, 0.0f32);
    for i in (0..CHAIN_STEPS).rev() {
        let y = xs[i + 1];
        let gz = gx * y * (1.0 - y);
        ga += gz * xs[i];
        gb += gz;
        gx = gz * a;
    }
    (x, ga, gb)
}

// ---------------------------------------------------------------------------------------------
// W2 / W2b / W5: a one-hidden-layer sigmoid network, one SGD step.

/// The network, data and tape of an MLP step in tapegrad.
pub struct MlpTapegrad {
    pub net: Network<f32>,
    pub tape: Tape<f32>,
    pub x: Arc<Tensor<f32>>,
    pub labels: Vec<usize>,
    pub optimizer: Optimizer<f32>,
    pub lr: f32,
}

impl MlpTapegrad {
    pub fn new(sizes: &[usize], batch: usize, lr: f32) -> Self {
        let mut rng = StdRng::seed_from_u64(0);
        let net = Network::mlp(sizes, &mut rng);
        let x = Arc::new(Tensor::rand_uniform(&[batch, sizes[0]], 0.0, 1.0, &mut rng));
        let classes = (*sizes.last().expect("sizes")).max(2);
        let labels = (0..batch).map(|i| (i * 7 + 3) % classes).collect();
        MlpTapegrad {
            net,
            tape: Tape::new(),
            x,
            labels,
            optimizer: Optimizer::new(OptimizerKind::sgd()).expect("sgd"),
            lr,
        }
    }

    /// Forward, loss (softmax cross-entropy, or BCE from logits for one output), backward and
    /// an in-place SGD update. Returns the loss.
    pub fn step(&mut self) -> f32 {
        self.tape.clear();
        let tape = &self.tape;
        let bound = self.net.bind(tape);
        let x = tape.constant_shared(Arc::clone(&self.x));
        let out = self.net.forward_bound(&bound, x).expect("shapes fit");
        let loss = if out.logits.shape()[1] == 1 {
            let labels = &self.labels;
            let t = tape.constant(Tensor::from_fn(&[labels.len(), 1], |i| labels[i] as f32));
            out.logits
                .binary_cross_entropy_with_logits(t)
                .expect("shapes fit")
        } else {
            out.logits
                .softmax_cross_entropy(&self.labels)
                .expect("labels fit")
        };
        let grads = tape.backward(loss).expect("scalar loss");
        self.optimizer
            .step(
                &mut self.net.params,
                |id| bound.var(id).map(|v| &grads[v]),
                self.lr,
            )
            .expect("shapes fit");
        loss.item().expect("scalar")
    }
}

/// The same step by hand: preallocated buffers, four (or five) gemm calls, plain loops.
pub struct MlpFloor {
    d: usize,
    h: usize,
    k: usize,
    batch: usize,
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    x: Vec<f32>,
    labels: Vec<usize>,
    hid: Vec<f32>,
    z2: Vec<f32>,
    dz2: Vec<f32>,
    dh: Vec<f32>,
    dw1: Vec<f32>,
    dw2: Vec<f32>,
    db1: Vec<f32>,
    db2: Vec<f32>,
    lr: f32,
}

impl MlpFloor {
    pub fn new(sizes: &[usize], batch: usize, lr: f32) -> Self {
        let t = MlpTapegrad::new(sizes, batch, lr);
        let p = |name: &str| t.net.params[t.net.params.find(name).expect("param")].to_vec();
        let (d, h, k) = (sizes[0], sizes[1], sizes[2]);
        MlpFloor {
            d,
            h,
            k,
            batch,
            w1: p("h1.weight"),
            b1: p("h1.bias"),
            w2: p("out.weight"),
            b2: p("out.bias"),
            x: t.x.to_vec(),
            labels: t.labels.clone(),
            hid: vec![0.0; batch * h],
            z2: vec![0.0; batch * k],
            dz2: vec![0.0; batch * k],
            dh: vec![0.0; batch * h],
            dw1: vec![0.0; d * h],
            dw2: vec![0.0; h * k],
            db1: vec![0.0; h],
            db2: vec![0.0; k],
            lr,
        }
    }

    pub fn step(&mut self) -> f32 {
        let (d, h, k, n) = (self.d, self.h, self.k, self.batch);
        // Forward.
        gemm(n, d, h, &self.x, false, &self.w1, false, 0.0, &mut self.hid);
        for row in self.hid.chunks_exact_mut(h) {
            for (v, b) in row.iter_mut().zip(&self.b1) {
                *v = sigmoid(*v + b);
            }
        }
        gemm(
            n,
            h,
            k,
            &self.hid,
            false,
            &self.w2,
            false,
            0.0,
            &mut self.z2,
        );
        let mut loss = 0.0;
        for (i, (z, dz)) in self
            .z2
            .chunks_exact_mut(k)
            .zip(self.dz2.chunks_exact_mut(k))
            .enumerate()
        {
            for (v, b) in z.iter_mut().zip(&self.b2) {
                *v += b;
            }
            let label = self.labels[i];
            if k == 1 {
                let (zv, t) = (z[0], label as f32);
                loss += zv.max(0.0) - zv * t + (-zv.abs()).exp().ln_1p();
                dz[0] = (sigmoid(zv) - t) / n as f32;
            } else {
                let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let s: f32 = z.iter().map(|v| (v - m).exp()).sum();
                loss += s.ln() + m - z[label];
                for (j, (dv, zv)) in dz.iter_mut().zip(z.iter()).enumerate() {
                    *dv = ((zv - m).exp() / s - if j == label { 1.0 } else { 0.0 }) / n as f32;
                }
            }
        }
        // Backward.
        gemm(
            h,
            n,
            k,
            &self.hid,
            true,
            &self.dz2,
            false,
            0.0,
            &mut self.dw2,
        );
        self.db2.iter_mut().for_each(|v| *v = 0.0);
        for row in self.dz2.chunks_exact(k) {
            self.db2.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        gemm(n, k, h, &self.dz2, false, &self.w2, true, 0.0, &mut self.dh);
        for (dv, hv) in self.dh.iter_mut().zip(&self.hid) {
            *dv *= hv * (1.0 - hv);
        }
        gemm(d, n, h, &self.x, true, &self.dh, false, 0.0, &mut self.dw1);
        self.db1.iter_mut().for_each(|v| *v = 0.0);
        for row in self.dh.chunks_exact(h) {
            self.db1.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        // SGD.
        let lr = self.lr;
        for (p, g) in [
            (&mut self.w1, &self.dw1),
            (&mut self.b1, &self.db1),
            (&mut self.w2, &self.dw2),
            (&mut self.b2, &self.db2),
        ] {
            p.iter_mut().zip(g.iter()).for_each(|(p, g)| *p -= lr * g);
        }
        loss / n as f32
    }
}

// ---------------------------------------------------------------------------------------------
// W3: logistic regression, full batch.

pub struct LogregTapegrad {
    pub net: Network<f32>,
    pub tape: Tape<f32>,
    pub x: Arc<Tensor<f32>>,
    pub y: Arc<Tensor<f32>>,
    pub optimizer: Optimizer<f32>,
}

impl LogregTapegrad {
    pub fn new() -> Self {
        let data = tapegrad::nn::data::breast_cancer::<f32>();
        let s = tapegrad::nn::Standardizer::fit(&data.x).expect("data");
        let x = s.transform(&data.x).expect("data");
        let labels = data.labels().expect("classes");
        let y = Tensor::from_vec(
            labels.iter().map(|&l| l as f32).collect(),
            &[labels.len(), 1],
        )
        .expect("n");
        let net = Network::logistic_regression(30, &mut StdRng::seed_from_u64(0));
        LogregTapegrad {
            net,
            tape: Tape::new(),
            x: Arc::new(x),
            y: Arc::new(y),
            optimizer: Optimizer::new(OptimizerKind::sgd()).expect("sgd"),
        }
    }

    pub fn step(&mut self) -> f32 {
        self.tape.clear();
        let tape = &self.tape;
        let bound = self.net.bind(tape);
        let x = tape.constant_shared(Arc::clone(&self.x));
        let out = self.net.forward_bound(&bound, x).expect("shapes fit");
        let loss = out
            .logits
            .binary_cross_entropy_with_logits(tape.constant_shared(Arc::clone(&self.y)))
            .expect("shapes");
        let grads = tape.backward(loss).expect("scalar loss");
        self.optimizer
            .step(
                &mut self.net.params,
                |id| bound.var(id).map(|v| &grads[v]),
                0.1,
            )
            .expect("fit");
        loss.item().expect("scalar")
    }
}

pub struct LogregFloor {
    x: Vec<f32>,
    y: Vec<f32>,
    w: Vec<f32>,
    b: f32,
    z: Vec<f32>,
    dw: Vec<f32>,
}

impl LogregFloor {
    pub fn new() -> Self {
        let t = LogregTapegrad::new();
        LogregFloor {
            x: t.x.to_vec(),
            y: t.y.to_vec(),
            w: vec![0.0; 30],
            b: 0.0,
            z: vec![0.0; 569],
            dw: vec![0.0; 30],
        }
    }

    pub fn step(&mut self) -> f32 {
        let n = self.y.len();
        gemm(n, 30, 1, &self.x, false, &self.w, false, 0.0, &mut self.z);
        let mut loss = 0.0;
        let mut db = 0.0;
        for (z, &t) in self.z.iter_mut().zip(&self.y) {
            let zv = *z + self.b;
            loss += zv.max(0.0) - zv * t + (-zv.abs()).exp().ln_1p();
            *z = (sigmoid(zv) - t) / n as f32;
            db += *z;
        }
        gemm(30, n, 1, &self.x, true, &self.z, false, 0.0, &mut self.dw);
        self.w
            .iter_mut()
            .zip(&self.dw)
            .for_each(|(w, g)| *w -= 0.1 * g);
        self.b -= 0.1 * db;
        loss / n as f32
    }
}

// ---------------------------------------------------------------------------------------------
// W4: the gradient of sum(A B) for 512 x 512 operands.

pub struct MatmulGrad {
    pub a: Arc<Tensor<f32>>,
    pub b: Arc<Tensor<f32>>,
    pub tape: Tape<f32>,
    out: Vec<f32>,
    da: Vec<f32>,
    db: Vec<f32>,
    g: Vec<f32>,
}

pub const W4_N: usize = 512;

impl MatmulGrad {
    pub fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(0);
        let n = W4_N;
        MatmulGrad {
            a: Arc::new(Tensor::randn(&[n, n], 0.0, 1.0, &mut rng)),
            b: Arc::new(Tensor::randn(&[n, n], 0.0, 1.0, &mut rng)),
            tape: Tape::new(),
            out: vec![0.0; n * n],
            da: vec![0.0; n * n],
            db: vec![0.0; n * n],
            g: vec![1.0; n * n],
        }
    }

    pub fn tapegrad(&mut self) -> f32 {
        self.tape.clear();
        // The operands go on the tape by reference (as PyTorch's or candle's refcounted
        // tensors would), not copied.
        let va = self.tape.var_shared(Arc::clone(&self.a));
        let vb = self.tape.var_shared(Arc::clone(&self.b));
        let loss = va.matmul(vb).expect("shapes fit").sum();
        let grads = self.tape.backward(loss).expect("scalar loss");
        grads[va].as_slice()[0] + grads[vb].as_slice()[0]
    }

    pub fn floor(&mut self) -> f32 {
        let n = W4_N;
        gemm(
            n,
            n,
            n,
            self.a.as_slice(),
            false,
            self.b.as_slice(),
            false,
            0.0,
            &mut self.out,
        );
        gemm(
            n,
            n,
            n,
            &self.g,
            false,
            self.b.as_slice(),
            true,
            0.0,
            &mut self.da,
        );
        gemm(
            n,
            n,
            n,
            self.a.as_slice(),
            true,
            &self.g,
            false,
            0.0,
            &mut self.db,
        );
        self.da[0] + self.db[0]
    }
}
