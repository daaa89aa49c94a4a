//! The parameter store: named tensors that live outside any tape, keyed by slotmap ids; binding
//! them to a tape; and the gradients a step reads back. [`ParamStore`] describes a step's
//! lifecycle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use slotmap::{Key, SlotMap, new_key_type};
use smallvec::SmallVec;
use tapegrad_autodiff::{Gradients, Tape, Var};
use tapegrad_tensor::{Float, Tensor};

use crate::error::{Result, data, param};

new_key_type! {
    /// A parameter's key inside its store's slot map.
    pub(crate) struct ParamKey;
}

/// The id of one parameter tensor in a [`ParamStore`], tied to the store that made it: another
/// store's id never names one of this store's parameters (it is `None` from
/// [`ParamStore::get`] and a panic from indexing), and an [`crate::Optimizer`] keeps separate
/// state for the parameters of separate stores. A clone of a store is a copy of the same
/// parameters and answers to the same ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId {
    pub(crate) store: u64,
    pub(crate) key: ParamKey,
}

/// A process-wide counter: every new store gets its own number.
fn next_store_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One named parameter tensor. Its value is shared (by reference count) with the tapes it is
/// bound to; see [`ParamStore`] for a step's lifecycle. A clone is a
/// parameter of its own: it copies the value, so updating one never changes the other.
#[derive(Debug)]
pub struct Param<E: Float> {
    /// A unique name such as `h1.weight` (shared, so naming tape leaves after it allocates
    /// nothing).
    name: Arc<str>,
    value: Arc<Tensor<E>>,
}

impl<E: Float> Clone for Param<E> {
    fn clone(&self) -> Self {
        Param {
            name: Arc::clone(&self.name),
            value: Arc::new(Tensor::clone(&self.value)),
        }
    }
}

impl<E: Float> Param<E> {
    /// The parameter's name.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// assert_eq!(params.get(w).unwrap().name(), "w");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current value.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::ones(&[2]));
    /// assert_eq!(params.get(w).unwrap().value().to_vec(), vec![1.0, 1.0]);
    /// ```
    pub fn value(&self) -> &Tensor<E> {
        &self.value
    }

    /// Whether [`Param::value_mut`] would give the value: nothing else (a tape, a clone of the
    /// `Arc`) holds it. Two counter reads, where `value_mut` locks the weak count.
    pub(crate) fn is_unique(&self) -> bool {
        // With `&self` borrowed from the store, no new holder can appear while this reads:
        // one could only come from an existing `Arc` or `Weak`, and these counts say there
        // is none.
        Arc::strong_count(&self.value) == 1 && Arc::weak_count(&self.value) == 0
    }

    /// The value, to change in place.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::ones(&[2]));
    /// let mut tape = Tape::new();
    /// let bound = params.bind(&tape);
    /// drop(bound);
    /// // The tape still holds w: writing to it now would have to copy it, so it is refused.
    /// assert!(params.get_mut(w).unwrap().value_mut().is_err());
    /// tape.clear();
    /// params.get_mut(w).unwrap().value_mut()?.as_mut_slice()[0] = 5.0;
    /// assert_eq!(params[w].to_vec(), vec![5.0, 1.0]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`crate::NnError::Param`] when a tape (or an `Arc` taken with [`Param::shared`]) still
    /// shares the value: clear the tape first.
    pub fn value_mut(&mut self) -> Result<&mut Tensor<E>> {
        let name = &self.name;
        Arc::get_mut(&mut self.value).ok_or_else(|| {
            param(
                "in-place update",
                &**name,
                "a tape (or another owner) still shares it: clear the tape before changing the \
                 parameter (see ParamStore::bind)",
            )
        })
    }

    /// The shared value, as a tape leaf takes it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::ones(&[2]));
    /// let shared = params.get(w).unwrap().shared();
    /// assert_eq!(Arc::strong_count(&shared), 2);
    /// ```
    pub fn shared(&self) -> Arc<Tensor<E>> {
        Arc::clone(&self.value)
    }
}

/// Parameters that outlive tapes: each training step binds them to tape leaves that share
/// their values ([`ParamStore::bind`]) and updates them in place. Iteration follows insertion
/// order.
///
/// # A step's lifecycle
///
/// A parameter's value is held in an `Arc`. [`ParamStore::bind`] hands each one to the tape as
/// a shared leaf ([`Tape::var_shared`]): a reference count, no copy. [`Bound::backward`] moves
/// the parameters' gradients out of the backward pass into an owned [`ParamGrads`]. Clearing
/// the tape ([`Tape::clear`], which the borrow checker allows only once no `Var` of the step is
/// left) drops the tape's references, and [`crate::Optimizer::step`] then updates every
/// parameter in place. A step that forgets the clear gets an error naming the parameter, never a
/// silent copy: nothing in tapegrad copies a shared parameter to write to it.
///
/// ```
/// use tapegrad_autodiff::Tape;
/// use tapegrad_nn::{Optimizer, OptimizerKind, ParamStore};
/// use tapegrad_tensor::Tensor;
///
/// // Least squares: fit y = 2x - 1 with one weight and one bias.
/// let x = Tensor::<f64>::from_vec(vec![0.0, 1.0, 2.0, 3.0], &[4, 1])?;
/// let y = Tensor::from_vec(vec![-1.0, 1.0, 3.0, 5.0], &[4, 1])?;
/// let mut params = ParamStore::new();
/// let w = params.insert("w", Tensor::zeros(&[1, 1]));
/// let b = params.insert("b", Tensor::zeros(&[1]));
/// let mut opt = Optimizer::new(OptimizerKind::sgd_momentum(0.9))?;
/// let mut tape = Tape::new();
/// for _ in 0..300 {
///     let bound = params.bind(&tape); // shares w and b with the tape
///     let pred = tape.constant(x.clone()).linear(bound[w], bound[b])?;
///     let loss = pred.mse(tape.constant(y.clone()))?;
///     let grads = bound.backward(loss)?; // owned gradients by parameter
///     tape.clear(); // the tape lets go of w and b
///     opt.step(&mut params, &grads, 0.05)?; // in place
/// }
/// assert!((params[w].item()? - 2.0).abs() < 1e-6);
/// assert!((params[b].item()? + 1.0).abs() < 1e-6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Use
///
/// ```
/// use tapegrad_nn::ParamStore;
/// use tapegrad_tensor::Tensor;
/// let mut params = ParamStore::<f32>::new();
/// let w = params.insert("layer.weight", Tensor::zeros(&[3, 2]));
/// let b = params.insert("layer.bias", Tensor::zeros(&[2]));
/// assert_eq!(params.len(), 2);
/// assert_eq!(params.num_elements(), 8);
/// assert_eq!(params.find("layer.bias"), Some(b));
/// assert_eq!(params[w].shape(), &[3, 2]);
/// ```
#[derive(Debug, Clone)]
pub struct ParamStore<E: Float = f32> {
    id: u64,
    params: SlotMap<ParamKey, Param<E>>,
    order: Vec<ParamId>,
}

impl<E: Float> Default for ParamStore<E> {
    fn default() -> Self {
        ParamStore {
            id: next_store_id(),
            params: SlotMap::with_key(),
            order: Vec::new(),
        }
    }
}

impl<E: Float> ParamStore<E> {
    /// An empty store.
    ///
    /// ```
    /// let params = tapegrad_nn::ParamStore::<f64>::new();
    /// assert!(params.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter and returns its id.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::ones(&[2, 2]));
    /// assert_eq!(params[w].to_vec(), vec![1.0; 4]);
    /// ```
    pub fn insert(&mut self, name: impl AsRef<str>, value: Tensor<E>) -> ParamId {
        let key = self.params.insert(Param {
            name: Arc::from(name.as_ref()),
            value: Arc::new(value),
        });
        let id = ParamId {
            store: self.id,
            key,
        };
        self.order.push(id);
        id
    }

    /// The number this store's ids carry.
    pub(crate) fn store_id(&self) -> u64 {
        self.id
    }

    /// Whether `id` names a parameter of this store (false for another store's ids).
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut a = ParamStore::<f32>::new();
    /// let mut b = ParamStore::<f32>::new();
    /// let w = a.insert("w", Tensor::zeros(&[1]));
    /// b.insert("w", Tensor::zeros(&[1]));
    /// assert!(a.contains(w));
    /// assert!(!b.contains(w)); // same name and position, another store
    /// ```
    pub fn contains(&self, id: ParamId) -> bool {
        id.store == self.id && self.params.contains_key(id.key)
    }

    /// The parameter with this id; `None` for an id of another store.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[4]));
    /// assert_eq!(params.get(w).map(|p| p.name()), Some("w"));
    /// assert!(ParamStore::<f32>::new().get(w).is_none());
    /// ```
    pub fn get(&self, id: ParamId) -> Option<&Param<E>> {
        if id.store != self.id {
            return None;
        }
        self.params.get(id.key)
    }

    /// The parameter with this id, mutable (its value through [`Param::value_mut`]); `None`
    /// for an id of another store.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// params.get_mut(w).unwrap().value_mut()?.fill(3.0);
    /// assert_eq!(params[w].to_vec(), vec![3.0, 3.0]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn get_mut(&mut self, id: ParamId) -> Option<&mut Param<E>> {
        if id.store != self.id {
            return None;
        }
        self.params.get_mut(id.key)
    }

    /// Replaces a parameter's value with one of the same shape (loading given weights). A
    /// refused value changes nothing. A tape that still holds the old value keeps it.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// params.set(w, Tensor::ones(&[2]))?;
    /// assert_eq!(params[w].to_vec(), vec![1.0, 1.0]);
    /// let err = params.set(w, Tensor::ones(&[3])).unwrap_err();
    /// assert!(err.to_string().contains("[3]"));
    /// assert_eq!(params[w].to_vec(), vec![1.0, 1.0]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`crate::NnError::Param`] when the shapes differ (both named), [`crate::NnError::Data`]
    /// for an id of another store.
    pub fn set(&mut self, id: ParamId, value: Tensor<E>) -> Result<()> {
        let p = self
            .get_mut(id)
            .ok_or_else(|| data("set parameter", format!("{id:?} is not in this store")))?;
        if p.value.shape() != value.shape() {
            return Err(param(
                "set parameter",
                &*p.name,
                format!(
                    "has shape {:?}, the value given {:?}",
                    p.value.shape(),
                    value.shape()
                ),
            ));
        }
        p.value = Arc::new(value);
        Ok(())
    }

    /// The id of the parameter with this name.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[1]));
    /// assert_eq!(params.find("w"), Some(w));
    /// assert_eq!(params.find("v"), None);
    /// ```
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.iter()
            .find(|(_, p)| &*p.name == name)
            .map(|(id, _)| id)
    }

    /// The ids in insertion order.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let a = params.insert("a", Tensor::zeros(&[1]));
    /// let b = params.insert("b", Tensor::zeros(&[1]));
    /// assert_eq!(params.ids(), &[a, b]);
    /// ```
    pub fn ids(&self) -> &[ParamId] {
        &self.order
    }

    /// `(id, parameter)` pairs in insertion order.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// params.insert("a", Tensor::zeros(&[2]));
    /// params.insert("b", Tensor::zeros(&[3]));
    /// let names: Vec<&str> = params.iter().map(|(_, p)| p.name()).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Param<E>)> {
        self.order.iter().map(|&id| (id, &self.params[id.key]))
    }

    /// The number of parameter tensors.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// params.insert("a", Tensor::zeros(&[5]));
    /// assert_eq!(params.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the store holds no parameter.
    ///
    /// ```
    /// assert!(tapegrad_nn::ParamStore::<f32>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The total number of scalar parameters.
    ///
    /// ```
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// params.insert("w", Tensor::zeros(&[3, 4]));
    /// params.insert("b", Tensor::zeros(&[4]));
    /// assert_eq!(params.num_elements(), 16);
    /// ```
    pub fn num_elements(&self) -> usize {
        self.params.values().map(|p| p.value.len()).sum()
    }

    /// Binds every parameter to a leaf of `tape` that shares its value (no copy) and is named
    /// after it. See [`ParamStore`] for the whole step.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f64>::new();
    /// let w = params.insert("w", Tensor::from_vec(vec![3.0], &[1])?);
    /// let tape = Tape::new();
    /// let bound = params.bind(&tape);
    /// assert_eq!(bound[w].label().as_deref(), Some("w"));
    /// let grads = bound.backward((bound[w] * bound[w]).sum())?;
    /// assert_eq!(grads[w].to_vec(), vec![6.0]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn bind<'t>(&self, tape: &'t Tape<E>) -> Bound<'t, E> {
        let mut bound = Bound::new();
        for (id, p) in self.iter() {
            let v = tape.var_shared(Arc::clone(&p.value));
            bound.push(id, v.named_arc(&p.name));
        }
        bound
    }

    /// Binds the parameters, in store order ([`ParamStore::ids`]), to the given vars instead of
    /// new leaves: for checking a model's gradients with [`tapegrad_autodiff::gradcheck`], or
    /// for sharing parameters between models.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f64>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// let tape = Tape::new();
    /// let v = tape.var(Tensor::ones(&[2]));
    /// let bound = params.bind_vars(&[v])?;
    /// assert_eq!(bound[w].index(), v.index());
    /// assert!(params.bind_vars(&[tape.var(Tensor::ones(&[3]))]).is_err());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`crate::NnError::Data`] when the number of vars or a var's shape does not match the
    /// parameters.
    pub fn bind_vars<'t>(&self, vars: &[Var<'t, E>]) -> Result<Bound<'t, E>> {
        if vars.len() != self.len() {
            return Err(data(
                "bind_vars",
                format!("{} vars for {} parameters", vars.len(), self.len()),
            ));
        }
        let mut bound = Bound::new();
        for ((id, p), v) in self.iter().zip(vars) {
            if v.shape().as_slice() != p.value.shape() {
                return Err(data(
                    "bind_vars",
                    format!(
                        "parameter {} has shape {:?}, its var {:?}",
                        p.name,
                        p.value.shape(),
                        v.shape().as_slice()
                    ),
                ));
            }
            bound.push(id, *v);
        }
        Ok(bound)
    }
}

impl<E: Float> std::ops::Index<ParamId> for ParamStore<E> {
    type Output = Tensor<E>;

    /// # Panics
    ///
    /// When the id belongs to another store (use [`ParamStore::get`] for an `Option`).
    #[track_caller]
    fn index(&self, id: ParamId) -> &Tensor<E> {
        match self.get(id) {
            Some(p) => &p.value,
            None => {
                panic!("{id:?} is not a parameter of this ParamStore (an id of another store?)")
            }
        }
    }
}

/// Parameters bound to leaves of one tape for one step ([`ParamStore::bind`]). Up to 16
/// parameter tensors are held inline (no heap allocation per step). `bound[id]` is the leaf of
/// a parameter.
///
/// A `Bound` has no destructor of its own, so its borrow of the tape ends at its last use: the
/// tape can be cleared right after [`Bound::backward`] without dropping it by hand.
pub struct Bound<'t, E: Float> {
    /// The first [`INLINE`] pairs.
    inline: [Option<(ParamId, Var<'t, E>)>; INLINE],
    /// The rest (a `Vec`, whose destructor does not keep the tape borrowed).
    more: Vec<(ParamId, Var<'t, E>)>,
}

/// Parameters a [`Bound`] holds without allocating.
const INLINE: usize = 16;

impl<'t, E: Float> Bound<'t, E> {
    fn new() -> Self {
        Bound {
            inline: [None; INLINE],
            more: Vec::new(),
        }
    }

    fn push(&mut self, id: ParamId, v: Var<'t, E>) {
        match self.inline.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some((id, v)),
            None => self.more.push((id, v)),
        }
    }

    fn pairs(&self) -> impl Iterator<Item = &(ParamId, Var<'t, E>)> + '_ {
        self.inline
            .iter()
            .map_while(Option::as_ref)
            .chain(&self.more)
    }

    /// The tape leaf bound to a parameter; `None` for a parameter not bound here.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// let tape = Tape::new();
    /// let bound = params.bind(&tape);
    /// assert!(bound.var(w).is_some());
    /// let other = ParamStore::<f32>::new().insert("w", Tensor::zeros(&[2]));
    /// assert!(bound.var(other).is_none());
    /// ```
    pub fn var(&self, id: ParamId) -> Option<Var<'t, E>> {
        self.pair(id).map(|(_, v)| *v)
    }

    /// The pair of a parameter. Both ways of binding push a store's parameters in store order,
    /// and a store never removes one, so a parameter's pair sits at its slot index less one
    /// (slot maps hand out slots in order, after a sentinel): that pair is tried first, and
    /// the rest searched when it holds another id (vars bound by hand, another store's id).
    fn pair(&self, id: ParamId) -> Option<&(ParamId, Var<'t, E>)> {
        let at = (id.key.data().as_ffi() as u32 as usize).wrapping_sub(1);
        let hinted = match self.inline.get(at) {
            Some(slot) => slot.as_ref(),
            None => self.more.get(at.wrapping_sub(INLINE)),
        };
        match hinted {
            Some(pair) if pair.0 == id => Some(pair),
            _ => self.pairs().find(|(p, _)| *p == id),
        }
    }

    /// The tape leaf bound to a parameter, or an error naming the id.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// let tape = Tape::new();
    /// assert_eq!(params.bind(&tape).get(w)?.shape().as_slice(), &[2]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`crate::NnError::Data`] for a parameter that is not bound here (another store's id).
    pub fn get(&self, id: ParamId) -> Result<Var<'t, E>> {
        self.var(id).ok_or_else(|| {
            data(
                "bound parameter",
                format!("{id:?} is not bound here (a parameter of another store?)"),
            )
        })
    }

    /// `(parameter id, leaf)` pairs.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// params.insert("w", Tensor::zeros(&[2]));
    /// let tape = Tape::new();
    /// assert_eq!(params.bind(&tape).iter().count(), 1);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, Var<'t, E>)> + '_ {
        self.pairs().copied()
    }

    /// Runs backward from `loss` and moves the bound parameters' gradients out into an owned
    /// [`ParamGrads`] (parameters the loss does not reach get none, as PyTorch leaves their
    /// `.grad` at `None`), so the tape can be cleared before the optimizer step.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f64>::new();
    /// let w = params.insert("w", Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// let unused = params.insert("unused", Tensor::zeros(&[1]));
    /// let tape = Tape::new();
    /// let bound = params.bind(&tape);
    /// let grads = bound.backward((bound[w] * 3.0).sum())?;
    /// assert_eq!(grads[w].to_vec(), vec![3.0, 3.0]);
    /// assert!(grads.get(unused).is_none());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Tape::backward`] (a loss of more than one element, a var of another tape, the
    /// finite check).
    pub fn backward(&self, loss: Var<'t, E>) -> Result<ParamGrads<E>> {
        let mut grads = loss.tape().backward(loss)?;
        self.take_grads(&mut grads)
    }

    /// Moves the bound parameters' gradients out of a backward pass already run.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::ParamStore;
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f64>::new();
    /// let w = params.insert("w", Tensor::from_vec(vec![2.0], &[1])?);
    /// let tape = Tape::new();
    /// let bound = params.bind(&tape);
    /// let loss = (bound[w] * bound[w]).sum();
    /// let mut grads = tape.backward(loss)?;
    /// let taken = bound.take_grads(&mut grads)?;
    /// assert_eq!(taken[w].to_vec(), vec![4.0]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`tapegrad_autodiff::AutodiffError::ForeignVar`] when the gradients come from another
    /// tape.
    pub fn take_grads(&self, grads: &mut Gradients<'_, E>) -> Result<ParamGrads<E>> {
        let mut out = ParamGrads::new();
        for &(id, v) in self.pairs() {
            if let Some(g) = grads.take(v)? {
                out.grads.push((id, g));
            }
        }
        Ok(out)
    }
}

impl<'t, E: Float> std::ops::Index<ParamId> for Bound<'t, E> {
    type Output = Var<'t, E>;

    /// # Panics
    ///
    /// When the parameter is not bound here (use [`Bound::get`] for an error).
    #[track_caller]
    fn index(&self, id: ParamId) -> &Var<'t, E> {
        match self.pair(id) {
            Some((_, v)) => v,
            None => panic!("{id:?} is not bound here (a parameter of another store?)"),
        }
    }
}

/// Gradients by parameter, owned (they outlive the tape they came from): what
/// [`Bound::backward`] returns and [`crate::Optimizer::step`] reads. `grads[id]` is one
/// parameter's gradient.
#[derive(Debug, Clone, Default)]
pub struct ParamGrads<E: Float = f32> {
    /// Inline for small models: a training step allocates nothing for it.
    grads: SmallVec<[(ParamId, Tensor<E>); 8]>,
}

impl<E: Float> ParamGrads<E> {
    /// No gradients.
    ///
    /// ```
    /// assert!(tapegrad_nn::ParamGrads::<f32>::new().is_empty());
    /// ```
    pub fn new() -> Self {
        ParamGrads {
            grads: SmallVec::new(),
        }
    }

    /// Sets the gradient of one parameter (for gradients computed by other means).
    ///
    /// ```
    /// use tapegrad_nn::{ParamGrads, ParamStore};
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// let mut grads = ParamGrads::new();
    /// grads.insert(w, Tensor::ones(&[2]));
    /// grads.insert(w, Tensor::full(&[2], 2.0)); // replaces
    /// assert_eq!(grads[w].to_vec(), vec![2.0, 2.0]);
    /// ```
    pub fn insert(&mut self, id: ParamId, grad: Tensor<E>) {
        match self.grads.iter_mut().find(|(p, _)| *p == id) {
            Some((_, g)) => *g = grad,
            None => self.grads.push((id, grad)),
        }
    }

    /// The gradient of one parameter, if it has one.
    ///
    /// ```
    /// use tapegrad_nn::{ParamGrads, ParamStore};
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// assert!(ParamGrads::<f32>::new().get(w).is_none());
    /// ```
    pub fn get(&self, id: ParamId) -> Option<&Tensor<E>> {
        self.grads.iter().find(|(p, _)| *p == id).map(|(_, g)| g)
    }

    /// `(parameter id, gradient)` pairs in the order they were bound or inserted.
    ///
    /// ```
    /// use tapegrad_nn::{ParamGrads, ParamStore};
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let w = params.insert("w", Tensor::zeros(&[2]));
    /// let mut grads = ParamGrads::<f32>::new();
    /// grads.insert(w, Tensor::ones(&[2]));
    /// assert_eq!(grads.iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![w]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Tensor<E>)> {
        self.grads.iter().map(|(id, g)| (*id, g))
    }

    /// The number of parameters with a gradient.
    ///
    /// ```
    /// assert_eq!(tapegrad_nn::ParamGrads::<f32>::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether no parameter has a gradient.
    ///
    /// ```
    /// assert!(tapegrad_nn::ParamGrads::<f64>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// The Euclidean norm of all gradients together (as one long vector), computed in f64.
    ///
    /// ```
    /// use tapegrad_nn::{ParamGrads, ParamStore};
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f32>::new();
    /// let a = params.insert("a", Tensor::zeros(&[1]));
    /// let b = params.insert("b", Tensor::zeros(&[1]));
    /// let mut grads = ParamGrads::new();
    /// grads.insert(a, Tensor::full(&[1], 3.0));
    /// grads.insert(b, Tensor::full(&[1], 4.0));
    /// assert_eq!(grads.global_norm(), 5.0);
    /// ```
    pub fn global_norm(&self) -> f64 {
        self.grads
            .iter()
            .flat_map(|(_, g)| g.as_slice())
            .map(|v| v.to_f64() * v.to_f64())
            .sum::<f64>()
            .sqrt()
    }

    /// Scales every gradient so that the global norm is at most `max_norm` (PyTorch's
    /// `clip_grad_norm_`), and returns the norm before clipping. A NaN or infinite norm is
    /// returned and nothing is scaled.
    ///
    /// ```
    /// use tapegrad_nn::{ParamGrads, ParamStore};
    /// use tapegrad_tensor::Tensor;
    /// let mut params = ParamStore::<f64>::new();
    /// let a = params.insert("a", Tensor::zeros(&[2]));
    /// let mut grads = ParamGrads::new();
    /// grads.insert(a, Tensor::from_vec(vec![3.0, 4.0], &[2])?);
    /// assert_eq!(grads.clip_global_norm(1.0), 5.0);
    /// assert!((grads.global_norm() - 1.0).abs() < 1e-12);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    pub fn clip_global_norm(&mut self, max_norm: f64) -> f64 {
        let norm = self.global_norm();
        if norm.is_finite() && norm > max_norm {
            let s = E::from_f64(max_norm / norm);
            for (_, g) in &mut self.grads {
                g.as_mut_slice().iter_mut().for_each(|v| *v *= s);
            }
        }
        norm
    }
}

impl<E: Float> std::ops::Index<ParamId> for ParamGrads<E> {
    type Output = Tensor<E>;

    /// # Panics
    ///
    /// When the parameter has no gradient (use [`ParamGrads::get`] for an `Option`).
    #[track_caller]
    fn index(&self, id: ParamId) -> &Tensor<E> {
        self.get(id)
            .unwrap_or_else(|| panic!("{id:?} has no gradient here"))
    }
}
