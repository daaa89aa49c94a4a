//! The parameter store: named tensors that live outside any tape, keyed by slotmap ids.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use slotmap::{SlotMap, new_key_type};
use tapegrad_tensor::{Float, Tensor};

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

/// One named parameter tensor.
#[derive(Debug, Clone)]
pub struct Param<E: Float> {
    /// A unique name such as `h1.weight` (shared, so naming tape leaves after it allocates
    /// nothing).
    pub name: Arc<str>,
    /// The current value.
    pub value: Tensor<E>,
}

/// Parameters that outlive tapes: each training step binds them to fresh tape leaves and reads
/// their gradients back. Iteration follows insertion order.
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
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter and returns its id.
    pub fn insert(&mut self, name: impl AsRef<str>, value: Tensor<E>) -> ParamId {
        let key = self.params.insert(Param {
            name: Arc::from(name.as_ref()),
            value,
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
    pub fn contains(&self, id: ParamId) -> bool {
        id.store == self.id && self.params.contains_key(id.key)
    }

    /// The parameter with this id; `None` for an id of another store.
    pub fn get(&self, id: ParamId) -> Option<&Param<E>> {
        if id.store != self.id {
            return None;
        }
        self.params.get(id.key)
    }

    /// The parameter with this id, mutable; `None` for an id of another store.
    pub fn get_mut(&mut self, id: ParamId) -> Option<&mut Param<E>> {
        if id.store != self.id {
            return None;
        }
        self.params.get_mut(id.key)
    }

    /// The id of the parameter with this name.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.iter()
            .find(|(_, p)| &*p.name == name)
            .map(|(id, _)| id)
    }

    /// The ids in insertion order.
    pub fn ids(&self) -> &[ParamId] {
        &self.order
    }

    /// `(id, parameter)` pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Param<E>)> {
        self.order.iter().map(|&id| (id, &self.params[id.key]))
    }

    /// The number of parameter tensors.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the store holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The total number of scalar parameters.
    pub fn num_elements(&self) -> usize {
        self.params.values().map(|p| p.value.len()).sum()
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
