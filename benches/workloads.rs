//! tapegrad's own performance workloads, each as tapegrad code and as the hand-written floor
//! (the same math on the same matrixmultiply kernels, preallocated buffers, no graph). The
//! floors call matrixmultiply directly, as they always have, so their figures stay comparable
//! across sessions; `tapegrad::tensor::kernels::gemm` is the public way to the kernel tapegrad
//! runs (which computes small products without matrixmultiply's packing).
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
    /// The labels as a `[batch, 1]` tensor for a one-output network's BCE, made once as `x`
    /// is (the floor reads the labels directly).
    pub targets: Arc<Tensor<f32>>,
    /// One output: the loss is BCE from logits (else softmax cross-entropy).
    pub binary: bool,
    pub optimizer: Optimizer<f32>,
    pub lr: f32,
}

impl MlpTapegrad {
    pub fn new(sizes: &[usize], batch: usize, lr: f32) -> Self {
        let mut rng = StdRng::seed_from_u64(0);
        let net = Network::mlp(sizes, &mut rng);
        let x = Arc::new(Tensor::rand_uniform(&[batch, sizes[0]], 0.0, 1.0, &mut rng));
        let classes = (*sizes.last().expect("sizes")).max(2);
        let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + 3) % classes).collect();
        let targets = Arc::new(Tensor::from_fn(&[batch, 1], |i| labels[i] as f32));
        MlpTapegrad {
            net,
            tape: Tape::new(),
            x,
            labels,
            targets,
            binary: sizes.last() == Some(&1),
            optimizer: Optimizer::new(OptimizerKind::sgd()).expect("sgd"),
            lr,
        }
    }

    /// The tape, to profile a step.
    pub fn tape_mut(&mut self) -> &mut Tape {
        &mut self.tape
    }

    /// Forward, loss (softmax cross-entropy, or BCE from logits for one output), backward and
    /// an in-place SGD update. Returns the loss.
    pub fn step(&mut self) -> f32 {
        self.tape.clear();
        let tape = &self.tape;
        let bound = self.net.bind(tape);
        let x = tape.constant_shared(Arc::clone(&self.x));
        let out = self.net.forward_bound(&bound, x).expect("shapes fit");
        let loss = if self.binary {
            let t = tape.constant_shared(Arc::clone(&self.targets));
            out.logits
                .binary_cross_entropy_with_logits(t)
                .expect("shapes fit")
        } else {
            out.logits
                .softmax_cross_entropy(&self.labels)
                .expect("labels fit")
        };
        let value = loss.item().expect("scalar");
        let grads = bound.backward(loss).expect("scalar loss");
        self.tape.clear();
        self.optimizer
            .step(&mut self.net.params, &grads, f64::from(self.lr))
            .expect("shapes fit");
        value
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
        let value = loss.item().expect("scalar");
        let grads = bound.backward(loss).expect("scalar loss");
        self.tape.clear();
        self.optimizer
            .step(&mut self.net.params, &grads, 0.1)
            .expect("fit");
        value
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

// ---------------------------------------------------------------------------------------------
// W6: a weight shared by a batch of sequences: sum([256, 4, 32] x [32, 32]), forward and
// backward. The floor is the one 2-D product over all 1024 rows.

pub const W6_SHAPE: (usize, usize, usize) = (256, 4, 32);

pub struct SharedWeight {
    pub x: Arc<Tensor<f32>>,
    pub w: Arc<Tensor<f32>>,
    pub tape: Tape<f32>,
    out: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    g: Vec<f32>,
}

impl SharedWeight {
    pub fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(1);
        let (b, t, d) = W6_SHAPE;
        SharedWeight {
            x: Arc::new(Tensor::randn(&[b, t, d], 0.0, 1.0, &mut rng)),
            w: Arc::new(Tensor::randn(&[d, d], 0.0, 1.0, &mut rng)),
            tape: Tape::new(),
            out: vec![0.0; b * t * d],
            dx: vec![0.0; b * t * d],
            dw: vec![0.0; d * d],
            g: vec![1.0; b * t * d],
        }
    }

    pub fn tapegrad(&mut self) -> f32 {
        self.tape.clear();
        let x = self.tape.var_shared(Arc::clone(&self.x));
        let w = self.tape.var_shared(Arc::clone(&self.w));
        let loss = x.matmul(w).expect("shapes fit").sum();
        let grads = self.tape.backward(loss).expect("scalar loss");
        grads[x].as_slice()[0] + grads[w].as_slice()[0]
    }

    pub fn floor(&mut self) -> f32 {
        let (b, t, d) = W6_SHAPE;
        let rows = b * t;
        let (x, w) = (self.x.as_slice(), self.w.as_slice());
        gemm(rows, d, d, x, false, w, false, 0.0, &mut self.out);
        gemm(rows, d, d, &self.g, false, w, true, 0.0, &mut self.dx);
        gemm(d, rows, d, x, true, &self.g, false, 0.0, &mut self.dw);
        self.dx[0] + self.dw[0]
    }
}

// ---------------------------------------------------------------------------------------------
// W7: single-head attention, B = 8, T = 16, D = 32: Q, K, V = X Wq, X Wk, X Wv;
// O = softmax(Q K^T / sqrt(D)) V; the gradient of sum(O) with respect to X and the weights.

pub const W7_SHAPE: (usize, usize, usize) = (8, 16, 32);

pub struct Attention {
    pub x: Arc<Tensor<f32>>,
    pub w: [Arc<Tensor<f32>>; 3],
    pub tape: Tape<f32>,
    buf: AttentionBuffers,
}

/// The floor's preallocated buffers.
struct AttentionBuffers {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    p: Vec<f32>,
    o: Vec<f32>,
    dp: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
    dw: [Vec<f32>; 3],
    dx: Vec<f32>,
    g: Vec<f32>,
}

impl Attention {
    pub fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(2);
        let (b, t, d) = W7_SHAPE;
        let scale = 1.0 / (d as f32).sqrt();
        let mut w = || Arc::new(Tensor::randn(&[d, d], 0.0, scale, &mut rng));
        let w = [w(), w(), w()];
        let x = Arc::new(Tensor::randn(&[b, t, d], 0.0, 1.0, &mut rng));
        let n = b * t * d;
        Attention {
            x,
            w,
            tape: Tape::new(),
            buf: AttentionBuffers {
                q: vec![0.0; n],
                k: vec![0.0; n],
                v: vec![0.0; n],
                p: vec![0.0; b * t * t],
                o: vec![0.0; n],
                dp: vec![0.0; b * t * t],
                dq: vec![0.0; n],
                dk: vec![0.0; n],
                dv: vec![0.0; n],
                dw: [vec![0.0; d * d], vec![0.0; d * d], vec![0.0; d * d]],
                dx: vec![0.0; n],
                g: vec![1.0; n],
            },
        }
    }

    pub fn tapegrad(&mut self) -> f32 {
        let d = W7_SHAPE.2;
        self.tape.clear();
        let tape = &self.tape;
        let x = tape.var_shared(Arc::clone(&self.x));
        let [wq, wk, wv] = [0, 1, 2].map(|i| tape.var_shared(Arc::clone(&self.w[i])));
        let q = x.matmul(wq).expect("shapes");
        let k = x.matmul(wk).expect("shapes");
        let v = x.matmul(wv).expect("shapes");
        let s = q
            .matmul(k.transpose(1, 2).expect("axes"))
            .expect("shapes")
            .mul_scalar(1.0 / (d as f32).sqrt());
        let o = s.softmax(2).expect("axis").matmul(v).expect("shapes");
        let grads = tape.backward(o.sum()).expect("scalar loss");
        grads[x].as_slice()[0] + grads[wq].as_slice()[0]
    }

    pub fn floor(&mut self) -> f32 {
        let (b, t, d) = W7_SHAPE;
        let scale = 1.0 / (d as f32).sqrt();
        let x = self.x.as_slice();
        let [wq, wk, wv] = [0, 1, 2].map(|i| self.w[i].as_slice());
        let bf = &mut self.buf;
        // Projections over all b t rows at once.
        gemm(b * t, d, d, x, false, wq, false, 0.0, &mut bf.q);
        gemm(b * t, d, d, x, false, wk, false, 0.0, &mut bf.k);
        gemm(b * t, d, d, x, false, wv, false, 0.0, &mut bf.v);
        for i in 0..b {
            let (mat, sq) = (i * t * d, i * t * t);
            let (q, k, v) = (
                &bf.q[mat..mat + t * d],
                &bf.k[mat..mat + t * d],
                &bf.v[mat..mat + t * d],
            );
            let p = &mut bf.p[sq..sq + t * t];
            gemm(t, d, t, q, false, k, true, 0.0, p);
            for row in p.chunks_exact_mut(t) {
                let m = row.iter().fold(f32::NEG_INFINITY, |a, &s| a.max(s * scale));
                let mut sum = 0.0;
                for s in row.iter_mut() {
                    *s = (*s * scale - m).exp();
                    sum += *s;
                }
                row.iter_mut().for_each(|s| *s /= sum);
            }
            gemm(
                t,
                t,
                d,
                p,
                false,
                v,
                false,
                0.0,
                &mut bf.o[mat..mat + t * d],
            );
            // Backward with dO = 1.
            let g = &bf.g[mat..mat + t * d];
            let dp = &mut bf.dp[sq..sq + t * t];
            gemm(t, d, t, g, false, v, true, 0.0, dp);
            gemm(
                t,
                t,
                d,
                p,
                true,
                g,
                false,
                0.0,
                &mut bf.dv[mat..mat + t * d],
            );
            // dS = P (dP - rowsum(dP P)) scale, in place in dp.
            for (dprow, prow) in dp.chunks_exact_mut(t).zip(p.chunks_exact(t)) {
                let dot: f32 = dprow.iter().zip(prow).map(|(a, b)| a * b).sum();
                dprow
                    .iter_mut()
                    .zip(prow)
                    .for_each(|(a, &pp)| *a = pp * (*a - dot) * scale);
            }
            gemm(
                t,
                t,
                d,
                dp,
                false,
                k,
                false,
                0.0,
                &mut bf.dq[mat..mat + t * d],
            );
            gemm(
                t,
                t,
                d,
                dp,
                true,
                q,
                false,
                0.0,
                &mut bf.dk[mat..mat + t * d],
            );
        }
        let [dwq, dwk, dwv] = &mut bf.dw;
        gemm(d, b * t, d, x, true, &bf.dq, false, 0.0, dwq);
        gemm(d, b * t, d, x, true, &bf.dk, false, 0.0, dwk);
        gemm(d, b * t, d, x, true, &bf.dv, false, 0.0, dwv);
        gemm(b * t, d, d, &bf.dq, false, wq, true, 0.0, &mut bf.dx);
        gemm(b * t, d, d, &bf.dk, false, wk, true, 1.0, &mut bf.dx);
        gemm(b * t, d, d, &bf.dv, false, wv, true, 1.0, &mut bf.dx);
        bf.dx[0] + dwq[0]
    }
}

// ---------------------------------------------------------------------------------------------
// W8: conv2d 3x3, 32 -> 64 channels, 28 x 28, batch 64, padding 1: forward and the gradient of
// sum(Y) with respect to the input, the weights and the bias. The floor: im2col (the same
// routine), one product per image, col2im, and the weight gradient accumulated in place.

pub const W8_SHAPE: (usize, usize, usize, usize) = (64, 32, 64, 28);

pub struct Conv {
    pub x: Arc<Tensor<f32>>,
    pub w: Arc<Tensor<f32>>,
    pub b: Arc<Tensor<f32>>,
    pub tape: Tape<f32>,
    y: Vec<f32>,
    dw: Vec<f32>,
    dcols: Tensor<f32>,
    g: Vec<f32>,
}

impl Conv {
    pub fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(3);
        let (n, c, o, hw) = W8_SHAPE;
        let ckk = c * 9;
        Conv {
            x: Arc::new(Tensor::randn(&[n, c, hw, hw], 0.0, 1.0, &mut rng)),
            w: Arc::new(Tensor::randn(&[o, c, 3, 3], 0.0, 0.1, &mut rng)),
            b: Arc::new(Tensor::zeros(&[o])),
            tape: Tape::new(),
            y: vec![0.0; n * o * hw * hw],
            dw: vec![0.0; o * ckk],
            dcols: Tensor::zeros(&[n, ckk, hw * hw]),
            g: vec![1.0; n * o * hw * hw],
        }
    }

    pub fn tapegrad(&mut self) -> f32 {
        self.tape.clear();
        let tape = &self.tape;
        let x = tape.var_shared(Arc::clone(&self.x));
        let w = tape.var_shared(Arc::clone(&self.w));
        let b = tape.var_shared(Arc::clone(&self.b));
        let y = x.conv2d(w, Some(b), (1, 1), (1, 1)).expect("shapes");
        let grads = tape.backward(y.sum()).expect("scalar loss");
        grads[x].as_slice()[0] + grads[w].as_slice()[0] + grads[b].as_slice()[0]
    }

    pub fn floor(&mut self) -> f32 {
        let (n, c, o, hw) = W8_SHAPE;
        let (ckk, l) = (c * 9, hw * hw);
        let cols = self.x.im2col((3, 3), (1, 1), (1, 1)).expect("fits");
        let (cs, w) = (cols.as_slice(), self.w.as_slice());
        for i in 0..n {
            let col = &cs[i * ckk * l..(i + 1) * ckk * l];
            let y = &mut self.y[i * o * l..(i + 1) * o * l];
            gemm(o, ckk, l, w, false, col, false, 0.0, y);
            // The bias is zero: adding it is one pass over y, which tapegrad does too.
            let g = &self.g[i * o * l..(i + 1) * o * l];
            gemm(
                o,
                l,
                ckk,
                g,
                false,
                col,
                true,
                if i == 0 { 0.0 } else { 1.0 },
                &mut self.dw,
            );
            let dcol = &mut self.dcols.as_mut_slice()[i * ckk * l..(i + 1) * ckk * l];
            gemm(ckk, o, l, w, true, g, false, 0.0, dcol);
        }
        let mut db = vec![0.0f32; o];
        for (row, g) in self.g.chunks_exact(l).enumerate() {
            db[row % o] += g.iter().sum::<f32>();
        }
        let dx = self
            .dcols
            .col2im(self.x.shape(), (3, 3), (1, 1), (1, 1))
            .expect("fits");
        dx.as_slice()[0] + self.dw[0] + db[0]
    }
}

/// N1, the nn layer's own cost: `nn::train` over an epoch of `steps` batches of an MLP, against
/// the same steps written on the raw tape (the README's custom loop: shared leaves, linear,
/// sigmoid, softmax cross-entropy, backward, in-place SGD). Both select each batch's rows from
/// the dataset as a training loop must.
pub struct NnTrain {
    net: Network,
    data: tapegrad::nn::Dataset,
    config: tapegrad::nn::TrainConfig,
    rng: StdRng,
}

impl NnTrain {
    pub fn new(sizes: &[usize], batch: usize, steps: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(11);
        let net = Network::mlp(sizes, &mut rng);
        let n = batch * steps;
        let x = Tensor::rand_uniform(&[n, sizes[0]], 0.0, 1.0, &mut rng);
        let classes = *sizes.last().expect("sizes");
        let labels = (0..n).map(|i| (i * 7 + 3) % classes).collect();
        let data = tapegrad::nn::Dataset::classification(x, labels).expect("labels fit");
        let config = tapegrad::nn::TrainConfig {
            epochs: 1,
            batch_size: batch,
            learning_rate: 0.01,
            optimizer: OptimizerKind::sgd(),
            shuffle: false,
            ..Default::default()
        };
        NnTrain {
            net,
            data,
            config,
            rng,
        }
    }

    /// One epoch through `nn::train`; returns its last loss.
    pub fn epoch(&mut self) -> f64 {
        let r = tapegrad::nn::train(&mut self.net, &self.data, &self.config, &mut self.rng)
            .expect("fits");
        r.history[0].loss
    }
}

/// A raw-tape step's SGD update: each weight, shared with a tape that has since been cleared,
/// changed in place by `lr` times its gradient.
fn sgd_in_place(weights: &mut [Arc<Tensor<f32>>], grads: &[Tensor<f32>], lr: f32) {
    for (w, g) in weights.iter_mut().zip(grads) {
        let w = Arc::get_mut(w).expect("the tape let go");
        for (p, &d) in w.as_mut_slice().iter_mut().zip(g.as_slice()) {
            *p -= lr * d;
        }
    }
}

/// The raw-tape side of N1.
pub struct RawTrain {
    weights: [Arc<Tensor>; 4],
    x: Tensor,
    labels: Vec<usize>,
    batch: usize,
    tape: Tape,
}

impl RawTrain {
    pub fn new(sizes: &[usize], batch: usize, steps: usize) -> Self {
        let t = NnTrain::new(sizes, batch, steps);
        let p = |name: &str| Arc::new(t.net.param(name).expect("mlp names").clone());
        RawTrain {
            weights: [p("h1.weight"), p("h1.bias"), p("out.weight"), p("out.bias")],
            labels: t.data.labels().expect("labels").to_vec(),
            x: t.data.x,
            batch,
            tape: Tape::new(),
        }
    }

    /// One epoch of raw-tape steps; returns the mean loss.
    pub fn epoch(&mut self) -> f64 {
        let n = self.labels.len();
        let rows: Vec<usize> = (0..n).collect();
        let mut total = 0.0;
        for chunk in rows.chunks(self.batch) {
            self.tape.clear();
            let tape = &self.tape;
            let xb = self.x.select_rows(chunk).expect("rows");
            let [w1, b1, w2, b2] = self
                .weights
                .each_ref()
                .map(|w| tape.var_shared(Arc::clone(w)));
            let h = tape.constant(xb).linear(w1, b1).expect("fits").sigmoid();
            let labels = &self.labels[chunk[0]..chunk[0] + chunk.len()];
            let loss = h
                .linear(w2, b2)
                .expect("fits")
                .softmax_cross_entropy(labels)
                .expect("labels");
            total += f64::from(loss.item().expect("scalar")) * chunk.len() as f64;
            let mut grads = tape.backward(loss).expect("scalar");
            let g = [w1, b1, w2, b2].map(|v| grads.take(v).expect("this tape").expect("reached"));
            drop(grads);
            self.tape.clear();
            sgd_in_place(&mut self.weights, &g, 0.01);
        }
        total / n as f64
    }
}

/// N5, the nn layer's cost at W5's size: the W5 step ([`MlpTapegrad`]: `Network::bind`,
/// `forward_bound`, `Bound::backward`, `Optimizer::step`) against the same step written on the
/// raw tape: the parameters as shared leaves, the fused hidden layer, the output layer, BCE
/// from logits, `backward`, the four gradients taken, and an in-place SGD update after `clear`.
/// Both give the same losses bit for bit.
pub struct MlpRawTape {
    tape: Tape<f32>,
    params: [Arc<Tensor<f32>>; 4],
    x: Arc<Tensor<f32>>,
    targets: Arc<Tensor<f32>>,
    lr: f32,
}

impl MlpRawTape {
    /// The W5 network's parameters, inputs and targets (`MlpTapegrad::new([2, 8, 1], 4, lr)`).
    pub fn new(lr: f32) -> Self {
        let w = MlpTapegrad::new(&[2, 8, 1], 4, lr);
        let p = |name: &str| {
            let id = w.net.params.find(name).expect("mlp names");
            Arc::new(w.net.params[id].clone())
        };
        MlpRawTape {
            tape: Tape::new(),
            params: [p("h1.weight"), p("h1.bias"), p("out.weight"), p("out.bias")],
            targets: Arc::clone(&w.targets),
            x: Arc::clone(&w.x),
            lr,
        }
    }

    /// One step; returns the loss.
    pub fn step(&mut self) -> f32 {
        self.tape.clear();
        let (loss, grads) = {
            let tape = &self.tape;
            let [w1, b1, w2, b2] = self
                .params
                .each_ref()
                .map(|p| tape.var_shared(Arc::clone(p)));
            let x = tape.constant_shared(Arc::clone(&self.x));
            let t = tape.constant_shared(Arc::clone(&self.targets));
            let logits = x
                .linear_sigmoid(w1, b1)
                .expect("fits")
                .linear(w2, b2)
                .expect("fits");
            let loss = logits.binary_cross_entropy_with_logits(t).expect("fits");
            let mut grads = tape.backward(loss).expect("scalar loss");
            let taken =
                [w1, b1, w2, b2].map(|v| grads.take(v).expect("this tape").expect("reached"));
            (loss.item().expect("scalar"), taken)
        };
        self.tape.clear();
        sgd_in_place(&mut self.params, &grads, self.lr);
        loss
    }
}

/// H1: a Hessian-vector product of the 784-256-10 MLP's loss with respect to all its
/// parameters (double backward: the gradient recorded as a graph by `Tape::grad`, its dot
/// product with v differentiated by `backward`), against a gradient evaluation (forward and
/// backward) of the same loss.
pub struct MlpHvp {
    net: Network,
    x: Arc<Tensor>,
    labels: Vec<usize>,
    v: Vec<Tensor>,
    tape: Tape,
}

impl MlpHvp {
    pub fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(5);
        let net = Network::mlp(&[784, 256, 10], &mut rng);
        let x = Arc::new(Tensor::rand_uniform(&[64, 784], 0.0, 1.0, &mut rng));
        let labels = (0..64).map(|i| (i * 7 + 3) % 10).collect();
        let v = net
            .params
            .iter()
            .map(|(_, p)| Tensor::rand_uniform(p.value().shape(), -1.0, 1.0, &mut rng))
            .collect();
        MlpHvp {
            net,
            x,
            labels,
            v,
            tape: Tape::new(),
        }
    }

    fn loss<'t>(&self, tape: &'t Tape, params: &[Var<'t, f32>]) -> Var<'t, f32> {
        let x = tape.constant_shared(Arc::clone(&self.x));
        x.linear(params[0], params[1])
            .expect("fits")
            .sigmoid()
            .linear(params[2], params[3])
            .expect("fits")
            .softmax_cross_entropy(&self.labels)
            .expect("labels")
    }

    /// The parameters as shared leaves of `tape`.
    fn bind<'t>(&self, tape: &'t Tape<f32>) -> Vec<Var<'t, f32>> {
        self.net
            .params
            .iter()
            .map(|(_, p)| tape.var_shared(p.shared()))
            .collect()
    }

    /// H v; returns one of its elements.
    pub fn hvp(&mut self) -> f32 {
        self.tape.clear();
        let tape = &self.tape;
        let params = self.bind(tape);
        let loss = self.loss(tape, &params);
        let g = tape.grad(loss, &params).expect("differentiable");
        let mut dot = g[0]
            .mul(tape.constant(self.v[0].clone()))
            .expect("shapes")
            .sum();
        for (gi, vi) in g.iter().zip(&self.v).skip(1) {
            let term = gi.mul(tape.constant(vi.clone())).expect("shapes").sum();
            dot = dot.add(term).expect("scalars");
        }
        let grads = tape.backward(dot).expect("scalar");
        grads[params[0]].as_slice()[0]
    }

    /// The gradient of the same loss (forward and backward); returns one element.
    pub fn gradient(&mut self) -> f32 {
        self.tape.clear();
        let tape = &self.tape;
        let params = self.bind(tape);
        let loss = self.loss(tape, &params);
        let grads = tape.backward(loss).expect("scalar");
        grads[params[0]].as_slice()[0]
    }
}

impl Default for MlpHvp {
    fn default() -> Self {
        Self::new()
    }
}

/// W5 replayed: the same step as [`MlpTapegrad`] (binary cross-entropy from logits of a
/// two-layer sigmoid network, plain SGD), its graph recorded once; each step runs backward,
/// updates the parameters, and replays the tape with them (`Tape::replay`).
pub struct MlpReplay {
    tape: Tape<f32>,
    params: Vec<Tensor<f32>>,
    ids: [usize; 4],
    loss: usize,
    lr: f32,
}

impl MlpReplay {
    pub fn new(sizes: &[usize], batch: usize, lr: f32) -> Self {
        let w = MlpTapegrad::new(sizes, batch, lr);
        assert_eq!(*sizes.last().expect("sizes"), 1, "one output (BCE)");
        let params: Vec<Tensor<f32>> = w
            .net
            .params
            .iter()
            .map(|(_, p)| p.value().clone())
            .collect();
        let tape = Tape::new();
        let (ids, loss) = {
            let v: Vec<Var<'_, f32>> = params.iter().map(|p| tape.var(p.clone())).collect();
            let x = tape.constant_shared(Arc::clone(&w.x));
            let labels = &w.labels;
            let t = tape.constant(Tensor::from_fn(&[labels.len(), 1], |i| labels[i] as f32));
            let z = x
                .linear(v[0], v[1])
                .expect("fits")
                .sigmoid()
                .linear(v[2], v[3])
                .expect("fits");
            let loss = z.binary_cross_entropy_with_logits(t).expect("fits");
            (
                [v[0].index(), v[1].index(), v[2].index(), v[3].index()],
                loss.index(),
            )
        };
        MlpReplay {
            tape,
            params,
            ids,
            loss,
            lr,
        }
    }

    /// Backward, an in-place SGD update, and a replay with the new parameters. Returns the loss.
    pub fn step(&mut self) -> f32 {
        let tape = &self.tape;
        let loss = tape.node(self.loss).expect("recorded");
        let value = loss.item().expect("scalar");
        let vars = self.ids.map(|i| tape.node(i).expect("recorded"));
        {
            let grads = tape.backward(loss).expect("scalar loss");
            for (p, v) in self.params.iter_mut().zip(vars) {
                for (pv, &g) in p.as_mut_slice().iter_mut().zip(grads[v].as_slice()) {
                    *pv -= self.lr * g;
                }
            }
        }
        let p = &self.params;
        tape.replay(&[
            (vars[0], &p[0]),
            (vars[1], &p[1]),
            (vars[2], &p[2]),
            (vars[3], &p[3]),
        ])
        .expect("same shapes");
        value
    }
}
