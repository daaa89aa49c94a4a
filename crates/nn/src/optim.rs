//! Optimizers: SGD with momentum and weight decay, and Adam. Updates are in place.

use slotmap::SecondaryMap;
use tapegrad_tensor::{Float, Tensor};

use crate::error::{Result, config};
use crate::params::{ParamId, ParamStore};

/// Which optimizer, with its settings (the learning rate is given per step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    /// Stochastic gradient descent (PyTorch's convention): g = grad + wd p; v = momentum v + g;
    /// p -= lr v (or p -= lr (g + momentum v) with Nesterov).
    Sgd {
        /// Momentum in [0, 1); 0 is plain SGD.
        momentum: f64,
        /// L2 weight decay added to the gradient.
        weight_decay: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam (Kingma & Ba, 2015) with bias correction and L2 weight decay.
    Adam {
        /// Decay of the first moment, in [0, 1).
        beta1: f64,
        /// Decay of the second moment, in [0, 1).
        beta2: f64,
        /// Added to the denominator.
        eps: f64,
        /// L2 weight decay added to the gradient.
        weight_decay: f64,
    },
}

impl OptimizerKind {
    /// Plain SGD: no momentum, no weight decay.
    pub fn sgd() -> Self {
        OptimizerKind::Sgd {
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// SGD with the given momentum.
    pub fn sgd_momentum(momentum: f64) -> Self {
        OptimizerKind::Sgd {
            momentum,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// Adam with the usual settings: betas 0.9 and 0.999, eps 1e-8, no weight decay.
    pub fn adam() -> Self {
        OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`crate::NnError::Config`] naming the setting out of range.
    pub fn validate(&self) -> Result<()> {
        let unit = |name: &'static str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(config(name, format!("must lie in [0, 1), got {v}")))
            }
        };
        let non_negative = |name: &'static str, v: f64| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(config(
                    name,
                    format!("must be a finite number >= 0, got {v}"),
                ))
            }
        };
        match *self {
            OptimizerKind::Sgd {
                momentum,
                weight_decay,
                ..
            } => {
                unit("momentum", momentum)?;
                non_negative("weight_decay", weight_decay)
            }
            OptimizerKind::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                non_negative("eps", eps)?;
                non_negative("weight_decay", weight_decay)
            }
        }
    }
}

/// An optimizer with its per-parameter state (momentum buffers or Adam moments).
#[derive(Debug, Clone)]
pub struct Optimizer<E: Float = f32> {
    /// The optimizer and its settings.
    pub kind: OptimizerKind,
    /// The number of steps taken.
    pub steps: u64,
    first: SecondaryMap<ParamId, Tensor<E>>,
    second: SecondaryMap<ParamId, Tensor<E>>,
}

impl<E: Float> Optimizer<E> {
    /// A fresh optimizer.
    ///
    /// # Errors
    ///
    /// When the settings are out of range.
    pub fn new(kind: OptimizerKind) -> Result<Self> {
        kind.validate()?;
        Ok(Optimizer {
            kind,
            steps: 0,
            first: SecondaryMap::new(),
            second: SecondaryMap::new(),
        })
    }

    /// The state tensors by parameter: `(first moment or velocity, second moment)`.
    pub fn state(&self, id: ParamId) -> (Option<&Tensor<E>>, Option<&Tensor<E>>) {
        (self.first.get(id), self.second.get(id))
    }

    /// Replaces the state of one parameter (used when loading a checkpoint).
    pub fn set_state(&mut self, id: ParamId, first: Option<Tensor<E>>, second: Option<Tensor<E>>) {
        match first {
            Some(t) => self.first.insert(id, t),
            None => self.first.remove(id),
        };
        match second {
            Some(t) => self.second.insert(id, t),
            None => self.second.remove(id),
        };
    }

    /// Updates every parameter that has a gradient, in place, with learning rate `lr`.
    ///
    /// # Errors
    ///
    /// When a gradient's shape differs from its parameter's.
    pub fn step<'g>(
        &mut self,
        params: &mut ParamStore<E>,
        grad: impl Fn(ParamId) -> Option<&'g Tensor<E>>,
        lr: E,
    ) -> Result<()>
    where
        E: 'g,
    {
        self.steps += 1;
        let f = |v: f64| E::from_f64(v);
        for i in 0..params.len() {
            let id = params.ids()[i];
            let Some(g) = grad(id) else { continue };
            let p = &mut params.get_mut(id).expect("ids come from this store").value;
            if p.shape() != g.shape() {
                return Err(tapegrad_tensor::TensorError::ShapeMismatch {
                    op: "optimizer step (parameter, gradient)",
                    lhs: p.shape().to_vec(),
                    rhs: g.shape().to_vec(),
                }
                .into());
            }
            match self.kind {
                OptimizerKind::Sgd {
                    momentum,
                    weight_decay,
                    nesterov,
                } => {
                    let (mu, wd) = (f(momentum), f(weight_decay));
                    if momentum == 0.0 {
                        for (pv, &gv) in p.as_mut_slice().iter_mut().zip(g.as_slice()) {
                            *pv -= lr * (gv + wd * *pv);
                        }
                        continue;
                    }
                    let v = self
                        .first
                        .entry(id)
                        .expect("a live id")
                        .or_insert_with(|| Tensor::zeros(g.shape()));
                    for ((pv, &gv), vv) in p
                        .as_mut_slice()
                        .iter_mut()
                        .zip(g.as_slice())
                        .zip(v.as_mut_slice())
                    {
                        let gd = gv + wd * *pv;
                        *vv = mu * *vv + gd;
                        *pv -= lr * if nesterov { gd + mu * *vv } else { *vv };
                    }
                }
                OptimizerKind::Adam {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                } => {
                    let t = self.steps as i32;
                    let c1 = f(1.0 - beta1.powi(t));
                    let c2 = f(1.0 - beta2.powi(t));
                    let (b1, b2, eps, wd) = (f(beta1), f(beta2), f(eps), f(weight_decay));
                    let m = self
                        .first
                        .entry(id)
                        .expect("a live id")
                        .or_insert_with(|| Tensor::zeros(g.shape()));
                    let v = self
                        .second
                        .entry(id)
                        .expect("a live id")
                        .or_insert_with(|| Tensor::zeros(g.shape()));
                    for (((pv, &gv), mv), vv) in p
                        .as_mut_slice()
                        .iter_mut()
                        .zip(g.as_slice())
                        .zip(m.as_mut_slice())
                        .zip(v.as_mut_slice())
                    {
                        let gd = gv + wd * *pv;
                        *mv = b1 * *mv + (E::ONE - b1) * gd;
                        *vv = b2 * *vv + (E::ONE - b2) * gd * gd;
                        *pv -= lr * (*mv / c1) / ((*vv / c2).sqrt() + eps);
                    }
                }
            }
        }
        Ok(())
    }
}
