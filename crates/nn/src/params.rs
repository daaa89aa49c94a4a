//! The parameter store: named tensors that live outside any tape, keyed by slotmap ids.

use std::sync::Arc;

use slotmap::{SlotMap, new_key_type};
use tapegrad_tensor::{Float, Tensor};

new_key_type! {
    /// The id of one parameter tensor in a [`ParamStore`].
    pub struct ParamId;
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
    params: SlotMap<ParamId, Param<E>>,
    order: Vec<ParamId>,
}

impl<E: Float> Default for ParamStore<E> {
    fn default() -> Self {
        ParamStore {
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
        let id = self.params.insert(Param {
            name: Arc::from(name.as_ref()),
            value,
        });
        self.order.push(id);
        id
    }

    /// The parameter with this id.
    pub fn get(&self, id: ParamId) -> Option<&Param<E>> {
        self.params.get(id)
    }

    /// The parameter with this id, mutable.
    pub fn get_mut(&mut self, id: ParamId) -> Option<&mut Param<E>> {
        self.params.get_mut(id)
    }

    /// The id of the parameter with this name.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.order
            .iter()
            .copied()
            .find(|&id| &*self.params[id].name == name)
    }

    /// The ids in insertion order.
    pub fn ids(&self) -> &[ParamId] {
        &self.order
    }

    /// `(id, parameter)` pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Param<E>)> {
        self.order.iter().map(|&id| (id, &self.params[id]))
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
    /// When the id belongs to another store.
    fn index(&self, id: ParamId) -> &Tensor<E> {
        &self.params[id].value
    }
}
