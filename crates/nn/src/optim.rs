//! Optimizers: SGD with momentum and weight decay, and Adam. Updates are in place.

use slotmap::SecondaryMap;
use std::sync::Mutex;

use smallvec::SmallVec;
use tapegrad_tensor::{
    Float, PAR_MIN_CHEAP, Tensor, par_chunk_len, par_chunks_mut, par_chunks_mut_by,
};

use crate::error::{Result, config, data, param};
use crate::params::{ParamGrads, ParamId, ParamKey, ParamStore};

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

    /// Which state tensors this optimizer keeps per parameter: (first moment or velocity,
    /// second moment).
    pub fn keeps(&self) -> (bool, bool) {
        match *self {
            OptimizerKind::Sgd { momentum, .. } => (momentum != 0.0, false),
            OptimizerKind::Adam { .. } => (true, true),
        }
    }

    /// The optimizer's name for messages: `"SGD"`, `"SGD with momentum"` or `"Adam"`.
    pub fn name(&self) -> &'static str {
        match *self {
            OptimizerKind::Sgd { momentum, .. } if momentum != 0.0 => "SGD with momentum",
            OptimizerKind::Sgd { .. } => "SGD",
            OptimizerKind::Adam { .. } => "Adam",
        }
    }

    /// Checks the settings for an optimizer of element type `E`: [`OptimizerKind::validate`],
    /// and every setting finite once converted to `E` (1e39 is a finite f64 but an infinite
    /// f32).
    ///
    /// # Errors
    ///
    /// [`crate::NnError::Config`] naming the setting out of range.
    pub fn validate_for<E: Float>(&self) -> Result<()> {
        self.validate()?;
        let (decay, eps) = match *self {
            OptimizerKind::Sgd { weight_decay, .. } => (weight_decay, 0.0),
            OptimizerKind::Adam {
                weight_decay, eps, ..
            } => (weight_decay, eps),
        };
        for (name, v) in [("weight_decay", decay), ("eps", eps)] {
            if !E::from_f64(v).is_finite() {
                return Err(config(
                    name,
                    format!("{v:e} overflows {} to infinity", E::DTYPE),
                ));
            }
        }
        Ok(())
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

/// One parameter's optimizer state: the steps it has taken, and its first moment (or velocity)
/// and second moment. SGD with momentum keeps `first`; Adam keeps both; plain SGD keeps none.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamState<E: Float = f32> {
    /// Steps this parameter has taken (Adam's bias correction uses it, as PyTorch's per-parameter
    /// `step`).
    pub step: u64,
    /// The first moment (Adam) or the velocity (SGD with momentum).
    pub first: Option<Tensor<E>>,
    /// The second moment (Adam).
    pub second: Option<Tensor<E>>,
}

/// The largest step count a parameter's state may hold: 2^53, past which a step count is no
/// longer exact in the f64 that bias correction computes in (and which no run reaches: 285
/// years at a million steps a second).
pub const MAX_STEPS: u64 = 1 << 53;

/// An optimizer with its per-parameter state (momentum buffers or Adam moments, and step
/// counts). One optimizer may step the parameters of several stores (an encoder's and a
/// decoder's): their ids differ, so their states never mix.
///
/// ```
/// use tapegrad_nn::{Optimizer, OptimizerKind, ParamGrads, ParamStore};
/// use tapegrad_tensor::Tensor;
/// let mut params = ParamStore::<f64>::new();
/// let w = params.insert("w", Tensor::from_vec(vec![1.0, -2.0], &[2])?);
/// let mut opt = Optimizer::new(OptimizerKind::sgd_momentum(0.9))?;
/// let mut grads = ParamGrads::new();
/// grads.insert(w, Tensor::from_vec(vec![0.5, 0.5], &[2])?);
/// opt.step(&mut params, &grads, 0.1)?;
/// assert_eq!(params[w].to_vec(), vec![0.95, -2.05]);
/// assert_eq!(opt.state(w).map(|s| s.step), Some(1));
/// # Ok::<(), tapegrad_nn::NnError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Optimizer<E: Float = f32> {
    /// The optimizer and its settings.
    pub kind: OptimizerKind,
    /// The number of calls to [`Optimizer::step`].
    pub steps: u64,
    /// Per-parameter state by store, then by the parameter's key in that store.
    states: Vec<(u64, SecondaryMap<ParamKey, ParamState<E>>)>,
}

impl<E: Float> Optimizer<E> {
    /// A fresh optimizer.
    ///
    /// # Errors
    ///
    /// When the settings are out of range ([`OptimizerKind::validate_for`]).
    ///
    /// ```
    /// use tapegrad_nn::{Optimizer, OptimizerKind, ParamGrads, ParamState, ParamStore};
    /// use tapegrad_tensor::Tensor;
    /// let adam = Optimizer::<f32>::new(OptimizerKind::adam())?;
    /// assert_eq!(adam.steps, 0);
    /// let bad = OptimizerKind::Sgd { momentum: 1.5, weight_decay: 0.0, nesterov: false };
    /// assert!(Optimizer::<f32>::new(bad).is_err());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn new(kind: OptimizerKind) -> Result<Self> {
        kind.validate_for::<E>()?;
        Ok(Optimizer {
            kind,
            steps: 0,
            states: Vec::new(),
        })
    }

    /// The state of one parameter, if it has any.
    ///
    /// ```
    /// use tapegrad_nn::{Optimizer, OptimizerKind, ParamGrads, ParamState, ParamStore};
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f64>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// let mut grads = ParamGrads::new();
    /// grads.insert(w, Tensor::ones(&[2]));
    /// let mut opt = Optimizer::new(OptimizerKind::adam())?;
    /// assert!(opt.state(w).is_none());
    /// opt.step(&mut params, &grads, 0.1)?;
    /// let st = opt.state(w).unwrap();
    /// assert_eq!(st.step, 1);
    /// assert_eq!(st.first.as_ref().unwrap().to_vec(), vec![1.0 - 0.9; 2]); // (1 - beta1) g
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn state(&self, id: ParamId) -> Option<&ParamState<E>> {
        self.states
            .iter()
            .find(|(store, _)| *store == id.store)
            .and_then(|(_, m)| m.get(id.key))
    }

    /// Replaces the state of one parameter of `params` (used when loading a checkpoint), or
    /// clears it with `None`. The state is checked against the parameter and this optimizer
    /// first; on an error nothing changes.
    ///
    /// # Errors
    ///
    /// [`crate::NnError::Data`] naming the parameter when `id` is not one of `params`, when a state
    /// tensor's shape differs from the parameter's (both shapes named), when the tensors present
    /// are not the ones this optimizer keeps (Adam: both moments; SGD with momentum: the
    /// velocity only; plain SGD: none), or when the step count exceeds [`MAX_STEPS`].
    ///
    /// ```
    /// use tapegrad_nn::{Optimizer, OptimizerKind, ParamGrads, ParamState, ParamStore};
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f64>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// let mut opt = Optimizer::new(OptimizerKind::sgd_momentum(0.9))?;
    /// let velocity = ParamState { step: 5, first: Some(Tensor::ones(&[2])), second: None };
    /// opt.set_state(&params, w, Some(velocity))?;
    /// assert_eq!(opt.state(w).map(|s| s.step), Some(5));
    /// // A velocity of the wrong shape is refused, naming both shapes.
    /// let wrong = ParamState { step: 1, first: Some(Tensor::ones(&[3])), second: None };
    /// assert!(opt.set_state(&params, w, Some(wrong)).is_err());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn set_state(
        &mut self,
        params: &ParamStore<E>,
        id: ParamId,
        state: Option<ParamState<E>>,
    ) -> Result<()> {
        let param = params.get(id).ok_or_else(|| {
            data(
                "optimizer set_state",
                format!("{id:?} is not a parameter of the given store"),
            )
        })?;
        if let Some(st) = &state {
            let name = param.name();
            for (what, t) in [("first moment", &st.first), ("second moment", &st.second)] {
                if let Some(t) = t
                    && t.shape() != param.value().shape()
                {
                    return Err(data(
                        "optimizer set_state",
                        format!(
                            "the {what} of parameter {name} has shape {:?}, the parameter {:?}",
                            t.shape(),
                            param.value().shape()
                        ),
                    ));
                }
            }
            let (wants_first, wants_second) = self.kind.keeps();
            if st.first.is_some() != wants_first || st.second.is_some() != wants_second {
                return Err(data(
                    "optimizer set_state",
                    format!(
                        "parameter {name}: {} keeps {}, the state given has {}",
                        self.kind.name(),
                        describe(wants_first, wants_second),
                        describe(st.first.is_some(), st.second.is_some())
                    ),
                ));
            }
            if st.step > MAX_STEPS {
                return Err(data(
                    "optimizer set_state",
                    format!(
                        "parameter {name}: step count {} is past 2^53 (no run takes that many)",
                        st.step
                    ),
                ));
            }
        }
        let slot = self.slot_for(id.store);
        let map = &mut self.states[slot].1;
        match state {
            Some(st) => {
                map.insert(id.key, st);
            }
            None => {
                map.remove(id.key);
            }
        }
        Ok(())
    }

    /// The position in `states` of one store's map, added if new.
    fn slot_for(&mut self, store: u64) -> usize {
        match self.states.iter().position(|(s, _)| *s == store) {
            Some(i) => i,
            None => {
                self.states.push((store, SecondaryMap::new()));
                self.states.len() - 1
            }
        }
    }

    /// Updates every parameter of `params` that has a gradient in `grads`, in place, with
    /// learning rate `lr` (an `f64`, as everywhere a learning rate is given). Gradients of
    /// other stores' parameters are left for their own step, so one optimizer can step an
    /// encoder's and a decoder's stores from one [`ParamGrads`].
    ///
    /// ```
    /// use tapegrad_nn::{Optimizer, OptimizerKind, ParamGrads, ParamStore};
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f64>::new();
    /// let w = params.insert("w", Tensor::from_vec(vec![1.0, -2.0], &[2])?);
    /// let mut grads = ParamGrads::new();
    /// grads.insert(w, Tensor::from_vec(vec![0.5, 0.5], &[2])?);
    /// let mut opt = Optimizer::new(OptimizerKind::sgd())?;
    /// opt.step(&mut params, &grads, 0.1)?;
    /// assert_eq!(params[w].to_vec(), vec![0.95, -2.05]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Checked for every parameter before any is changed, so a refused step changes nothing:
    /// [`NnError::Param`] when a parameter is still shared with a tape (clear the tape first:
    /// writing would have to copy it), when a gradient's shape differs from its parameter's, or
    /// when a state tensor no longer fits its parameter; [`NnError::Data`] when a step count
    /// would pass [`MAX_STEPS`], when the learning rate is negative, NaN or overflows `E`, or
    /// when `grads` is not empty but holds no parameter of `params`.
    ///
    /// [`NnError::Param`]: crate::NnError::Param
    /// [`NnError::Data`]: crate::NnError::Data
    pub fn step(
        &mut self,
        params: &mut ParamStore<E>,
        grads: &ParamGrads<E>,
        lr: f64,
    ) -> Result<()> {
        let lr_e = E::from_f64(lr);
        if !(lr >= 0.0 && lr_e.is_finite()) {
            return Err(data(
                "optimizer step",
                format!(
                    "learning rate {lr:e} must be a finite number >= 0 in {}",
                    E::DTYPE
                ),
            ));
        }
        let store = params.store_id();
        let stateful = self.kind.keeps().0;
        let slot = stateful.then(|| self.slot_for(store));
        // Every check first: a refused step changes nothing.
        let mut mine = 0;
        for (id, g) in grads.iter() {
            if id.store != store {
                continue;
            }
            mine += 1;
            let p = params.get_mut(id).ok_or_else(|| {
                data(
                    "optimizer step",
                    format!("{id:?} was removed from its store"),
                )
            })?;
            let shape = p.value().shape();
            // Compared element by element: `!=` on two slices calls `memcmp`.
            let same =
                shape.len() == g.shape().len() && shape.iter().zip(g.shape()).all(|(a, b)| a == b);
            if !same {
                return Err(param(
                    "optimizer step",
                    p.name(),
                    format!("has shape {shape:?}, its gradient {:?}", g.shape()),
                ));
            }
            if !p.is_unique() {
                return Err(param(
                    "optimizer step",
                    p.name(),
                    "a tape still shares it: clear the tape (after taking the gradients with \
                     Bound::backward) before the step, which updates parameters in place",
                ));
            }
            let (name, shape) = (p.name(), p.value().shape());
            if let Some(slot) = slot
                && let Some(st) = self.states[slot].1.get(id.key)
            {
                for (what, t) in [("first moment", &st.first), ("second moment", &st.second)] {
                    if let Some(t) = t
                        && t.shape() != shape
                    {
                        return Err(param(
                            "optimizer step",
                            name,
                            format!("has shape {shape:?}, its {what} {:?}", t.shape()),
                        ));
                    }
                }
                if st.step >= MAX_STEPS {
                    return Err(data(
                        "optimizer step",
                        format!("parameter {name}: step count {} would pass 2^53", st.step),
                    ));
                }
            }
        }
        if mine == 0 && !grads.is_empty() {
            return Err(data(
                "optimizer step",
                "none of the gradients belongs to a parameter of this store",
            ));
        }
        self.steps = self.steps.saturating_add(1);
        let f = |v: f64| E::from_f64(v);
        for (id, g) in grads.iter() {
            if id.store != store {
                continue;
            }
            let p = params
                .get_mut(id)
                .and_then(|p| p.value_mut().ok())
                .expect("checked above");
            let Some(slot) = slot else {
                // Plain SGD: no state, nothing to look up.
                let wd = match self.kind {
                    OptimizerKind::Sgd { weight_decay, .. } => f(weight_decay),
                    OptimizerKind::Adam { .. } => unreachable!("Adam keeps state"),
                };
                // Split over the worker threads when large: each element alike wherever it is.
                let gs = g.as_slice();
                // `move`: the closure holds its own copies of the rates, so the vectorized
                // loop need not check that writing the parameter leaves them unchanged.
                par_chunks_mut(p.as_mut_slice(), PAR_MIN_CHEAP, move |start, part| {
                    for (pv, &gv) in part.iter_mut().zip(&gs[start..]) {
                        *pv -= lr_e * (gv + wd * *pv);
                    }
                });
                continue;
            };
            let st = self.states[slot]
                .1
                .entry(id.key)
                .expect("a live key")
                .or_insert_with(|| ParamState {
                    step: 0,
                    first: None,
                    second: None,
                });
            st.step += 1;
            update(self.kind, st, p, g, lr_e);
        }
        Ok(())
    }
}

/// One stateful update of one parameter (its step count already advanced).
fn update<E: Float>(
    kind: OptimizerKind,
    st: &mut ParamState<E>,
    p: &mut Tensor<E>,
    g: &Tensor<E>,
    lr: E,
) {
    let f = |v: f64| E::from_f64(v);
    match kind {
        OptimizerKind::Sgd {
            momentum,
            weight_decay,
            nesterov,
        } => {
            let (mu, wd) = (f(momentum), f(weight_decay));
            let v = st.first.get_or_insert_with(|| Tensor::zeros(g.shape()));
            let (gs, vs) = (g.as_slice(), v.as_mut_slice());
            let per = par_chunk_len(gs.len(), PAR_MIN_CHEAP);
            // The velocity cut like the parameter: the job for the parameter's chunk at `start`
            // takes the velocity's chunk `start / per` (one chunk when not split).
            let v_parts: SmallVec<[Mutex<&mut [E]>; 8]> =
                vs.chunks_mut(per.max(1)).map(Mutex::new).collect();
            par_chunks_mut_by(p.as_mut_slice(), per, |start, ps| {
                if ps.is_empty() {
                    return; // an empty parameter has no state chunk
                }
                let mut v_part = lock(&v_parts, start, per);
                for ((pv, &gv), vv) in ps.iter_mut().zip(&gs[start..]).zip(v_part.iter_mut()) {
                    let gd = gv + wd * *pv;
                    *vv = mu * *vv + gd;
                    *pv -= lr * if nesterov { gd + mu * *vv } else { *vv };
                }
            });
        }
        OptimizerKind::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            // Bias correction in f64 with the step as a float: exact for every step count up
            // to 2^53, and 1 - beta^t never 0 for t >= 1.
            let t = st.step as f64;
            let c1 = f(1.0 - beta1.powf(t));
            let c2 = f(1.0 - beta2.powf(t));
            let (b1, b2, eps, wd) = (f(beta1), f(beta2), f(eps), f(weight_decay));
            let m = st.first.get_or_insert_with(|| Tensor::zeros(g.shape()));
            let v = st.second.get_or_insert_with(|| Tensor::zeros(g.shape()));
            let gs = g.as_slice();
            let per = par_chunk_len(gs.len(), PAR_MIN_CHEAP);
            // Both moments cut like the parameter (as the velocity above).
            let m_parts: SmallVec<[Mutex<&mut [E]>; 8]> = m
                .as_mut_slice()
                .chunks_mut(per.max(1))
                .map(Mutex::new)
                .collect();
            let v_parts: SmallVec<[Mutex<&mut [E]>; 8]> = v
                .as_mut_slice()
                .chunks_mut(per.max(1))
                .map(Mutex::new)
                .collect();
            par_chunks_mut_by(p.as_mut_slice(), per, |start, ps| {
                if ps.is_empty() {
                    return; // an empty parameter has no state chunk
                }
                let (mut m_part, mut v_part) =
                    (lock(&m_parts, start, per), lock(&v_parts, start, per));
                let moments = m_part.iter_mut().zip(v_part.iter_mut());
                for ((pv, &gv), (mv, vv)) in ps.iter_mut().zip(&gs[start..]).zip(moments) {
                    let gd = gv + wd * *pv;
                    *mv = b1 * *mv + (E::ONE - b1) * gd;
                    *vv = b2 * *vv + (E::ONE - b2) * gd * gd;
                    *pv -= lr * (*mv / c1) / ((*vv / c2).sqrt() + eps);
                }
            });
        }
    }
}

/// The chunk of a state tensor that goes with the parameter's chunk at `start` (chunks of
/// `per` elements; one chunk when there is no split).
fn lock<'a, 'b, E>(
    parts: &'a [Mutex<&'b mut [E]>],
    start: usize,
    per: usize,
) -> std::sync::MutexGuard<'a, &'b mut [E]> {
    parts[start / per.max(1)]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn describe(first: bool, second: bool) -> &'static str {
    match (first, second) {
        (true, true) => "both moments",
        (true, false) => "a first moment only",
        (false, true) => "a second moment only",
        (false, false) => "no moments",
    }
}
