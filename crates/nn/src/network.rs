//! Networks as directed acyclic graphs of sigmoid neurons and layers.

use std::fmt;
use std::fmt::Write as _;

use rand::Rng;
use slotmap::{SecondaryMap, SlotMap, new_key_type};
use smallvec::SmallVec;
use tapegrad_autodiff::{Tape, Var};
use tapegrad_tensor::{Float, Tensor};

use crate::activation::Activation;
use crate::error::{NnError, Result};
use crate::init::Init;
use crate::params::{ParamId, ParamStore};

new_key_type! {
    /// A node's key inside its network's slot map.
    struct NodeKey;
}

/// The id of one node of a [`Network`], tied to the network that made it: another network's
/// node ids are refused by every method that takes one (an error, or `None` from
/// [`Network::node`]). A clone of a network is a copy of the same nodes and answers to the same
/// ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    net: u64,
    key: NodeKey,
}

/// The nodes of one network, by id; ids of other networks find nothing.
#[derive(Debug, Clone)]
struct Nodes {
    net: u64,
    map: SlotMap<NodeKey, Node>,
}

impl Nodes {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Nodes {
            net: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            map: SlotMap::with_key(),
        }
    }

    fn insert(&mut self, node: Node) -> NodeId {
        NodeId {
            net: self.net,
            key: self.map.insert(node),
        }
    }

    fn get(&self, id: NodeId) -> Option<&Node> {
        if id.net != self.net {
            return None;
        }
        self.map.get(id.key)
    }

    fn contains_key(&self, id: NodeId) -> bool {
        self.get(id).is_some()
    }
}

impl std::ops::Index<NodeId> for Nodes {
    type Output = Node;

    /// Only for ids checked on the way in (every public method checks a caller's id first).
    #[inline]
    fn index(&self, id: NodeId) -> &Node {
        debug_assert_eq!(id.net, self.net, "a node id of this network");
        &self.map[id.key]
    }
}

/// What a node computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NodeKind {
    /// The network's input features.
    Input,
    /// One sigmoid-style neuron: n inputs to 1 output, `act(x . w + b)`. Logistic regression
    /// is a network with exactly one of these.
    Neuron {
        /// The weight column `[n, 1]`.
        weight: ParamId,
        /// The bias `[1]`.
        bias: ParamId,
        /// The activation.
        activation: Activation,
    },
    /// A layer of m units as one node: n inputs to m outputs, `act(X W + b)`.
    Layer {
        /// The weight matrix `[n, m]`.
        weight: ParamId,
        /// The bias `[m]`.
        bias: ParamId,
        /// The activation.
        activation: Activation,
    },
}

/// One node of a network.
#[derive(Debug, Clone)]
pub struct Node {
    /// A unique name (`input`, `h1`, `out`, ...), used for parameters and drawings.
    pub name: String,
    /// What it computes.
    pub kind: NodeKind,
    /// The nodes whose outputs, concatenated in this order, are its input.
    pub inputs: Vec<NodeId>,
    /// Its output width.
    pub width: usize,
}

impl Node {
    /// The activation of a neuron or layer (`None` for the input).
    pub fn activation(&self) -> Option<Activation> {
        match self.kind {
            NodeKind::Input => None,
            NodeKind::Neuron { activation, .. } | NodeKind::Layer { activation, .. } => {
                Some(activation)
            }
        }
    }

    fn weight_bias(&self) -> Option<(ParamId, ParamId)> {
        match self.kind {
            NodeKind::Input => None,
            NodeKind::Neuron { weight, bias, .. } | NodeKind::Layer { weight, bias, .. } => {
                Some((weight, bias))
            }
        }
    }
}

/// A network's parameters bound to leaves of one tape for one step. Up to 16 parameter
/// tensors are held inline (no heap allocation per step).
pub struct Bound<'t, E: Float> {
    vars: SmallVec<[(ParamId, Var<'t, E>); 16]>,
}

impl<'t, E: Float> Bound<'t, E> {
    /// The tape leaf bound to a parameter.
    pub fn var(&self, id: ParamId) -> Option<Var<'t, E>> {
        self.vars.iter().find(|(p, _)| *p == id).map(|(_, v)| *v)
    }

    /// `(parameter id, leaf)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, Var<'t, E>)> + '_ {
        self.vars.iter().copied()
    }
}

/// The output node's values on the tape: its logits (`x W + b`, which the cross-entropy losses
/// take, as PyTorch's `BCEWithLogitsLoss` and `CrossEntropyLoss` do) and, recorded only when
/// asked for, its activation of them.
#[derive(Clone, Copy)]
pub struct Outputs<'t, E: Float> {
    /// The output node's `x W + b`.
    pub logits: Var<'t, E>,
    /// The output node's activation.
    activation: Activation,
}

impl<'t, E: Float> Outputs<'t, E> {
    /// The output node's activation of the logits: the network's prediction. Each call
    /// records the activation on the tape (training with a cross-entropy loss never does).
    ///
    /// # Errors
    ///
    /// Errors of the activation op (none for the built-in activations).
    pub fn output(&self) -> Result<Var<'t, E>> {
        self.activation.apply_var(self.logits)
    }
}

/// A directed acyclic graph of neurons and layers over `n` input features, generic over `f32`
/// (the default) and `f64`.
///
/// Nodes are added in order and may only read earlier nodes, so the graph is acyclic by
/// construction. A node with several inputs reads their outputs concatenated, which is how skip
/// connections and other shapes are written:
///
/// ```
/// use tapegrad_nn::{Activation, Network};
/// use tapegrad_tensor::Tensor;
/// use rand::{SeedableRng, rngs::StdRng};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut net = Network::<f32>::new(2);
/// let h = net.layer(&[net.input()], 8, Activation::Sigmoid, &mut rng)?;
/// let y = net.neuron(&[h, net.input()], Activation::Sigmoid, &mut rng)?; // skip connection
/// net.set_output(y)?;
/// assert_eq!(net.num_nodes(), 2);
/// assert_eq!(net.num_parameters(), 2 * 8 + 8 + (8 + 2) + 1);
/// let p = net.predict(&Tensor::zeros(&[5, 2]))?;
/// assert_eq!(p.shape(), &[5, 1]);
/// # Ok::<(), tapegrad_nn::NnError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Network<E: Float = f32> {
    /// The parameters, by name.
    pub params: ParamStore<E>,
    nodes: Nodes,
    order: Vec<NodeId>,
    input: NodeId,
    output: Option<NodeId>,
}

impl<E: Float> Network<E> {
    /// An empty network over `n_inputs` features: only the input node, no output yet.
    pub fn new(n_inputs: usize) -> Self {
        let mut nodes = Nodes::new();
        let input = nodes.insert(Node {
            name: "input".into(),
            kind: NodeKind::Input,
            inputs: Vec::new(),
            width: n_inputs,
        });
        Network {
            params: ParamStore::new(),
            nodes,
            order: vec![input],
            input,
            output: None,
        }
    }

    /// Logistic regression: one sigmoid [`NodeKind::Neuron`] on the inputs, so
    /// `num_nodes() == 1`. Weights start at zero (the problem is convex).
    pub fn logistic_regression<R: Rng + ?Sized>(n_inputs: usize, rng: &mut R) -> Self {
        let mut net = Network::new(n_inputs);
        let input = net.input();
        let y = net
            .add_node(
                "out",
                &[input],
                1,
                true,
                Activation::Sigmoid,
                Init::Zeros,
                rng,
            )
            .expect("the input node belongs to this network");
        net.output = Some(y);
        net
    }

    /// Multinomial logistic (softmax) regression: one [`NodeKind::Layer`] of `n_classes` units
    /// with a softmax output. Weights start at zero.
    pub fn softmax_regression<R: Rng + ?Sized>(
        n_inputs: usize,
        n_classes: usize,
        rng: &mut R,
    ) -> Self {
        let mut net = Network::new(n_inputs);
        let input = net.input();
        let y = net
            .add_node(
                "out",
                &[input],
                n_classes,
                false,
                Activation::Softmax,
                Init::Zeros,
                rng,
            )
            .expect("the input node belongs to this network");
        net.output = Some(y);
        net
    }

    /// A multi-layer perceptron with sigmoid hidden layers: `sizes = [inputs, hidden..., outputs]`.
    /// One output is a sigmoid neuron (binary classification); several are a softmax layer.
    ///
    /// # Panics
    ///
    /// When `sizes` has fewer than two entries or a zero; use [`Network::try_mlp`] for an error.
    pub fn mlp<R: Rng + ?Sized>(sizes: &[usize], rng: &mut R) -> Self {
        Self::try_mlp(sizes, Activation::Sigmoid, rng).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Network::mlp`] with the hidden layers' activation chosen (sigmoid, tanh, relu,
    /// identity). Hidden weights use [`Init::default_for`] that activation.
    ///
    /// # Errors
    ///
    /// [`NnError::Config`] when `sizes` has fewer than two entries or a zero, or the hidden
    /// activation is softmax.
    pub fn try_mlp<R: Rng + ?Sized>(
        sizes: &[usize],
        hidden: Activation,
        rng: &mut R,
    ) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(crate::error::config(
                "mlp sizes",
                format!("need [inputs, hidden..., outputs], all above zero, got {sizes:?}"),
            ));
        }
        if hidden == Activation::Softmax {
            return Err(crate::error::config(
                "mlp hidden activation",
                "softmax is an output activation",
            ));
        }
        let mut net = Network::new(sizes[0]);
        let mut prev = net.input();
        for (i, &width) in sizes[1..sizes.len() - 1].iter().enumerate() {
            prev = net.layer_with(
                &format!("h{}", i + 1),
                &[prev],
                width,
                hidden,
                Init::default_for(hidden),
                rng,
            )?;
        }
        let out = *sizes.last().expect("two or more sizes");
        let y = if out == 1 {
            net.neuron_with(
                "out",
                &[prev],
                Activation::Sigmoid,
                Init::XavierUniform,
                rng,
            )?
        } else {
            net.layer_with(
                "out",
                &[prev],
                out,
                Activation::Softmax,
                Init::XavierUniform,
                rng,
            )?
        };
        net.set_output(y)?;
        Ok(net)
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        self.input
    }

    /// The number of input features.
    pub fn input_width(&self) -> usize {
        self.nodes[self.input].width
    }

    /// Adds a neuron (n inputs to 1 output) reading `inputs`, with default initialization for
    /// its activation.
    ///
    /// # Errors
    ///
    /// [`NnError::Node`] when `inputs` is empty or names a node of another network.
    pub fn neuron<R: Rng + ?Sized>(
        &mut self,
        inputs: &[NodeId],
        activation: Activation,
        rng: &mut R,
    ) -> Result<NodeId> {
        let name = format!("n{}", self.order.len());
        self.neuron_with(
            &name,
            inputs,
            activation,
            Init::default_for(activation),
            rng,
        )
    }

    /// Adds a named neuron with a chosen initializer.
    ///
    /// # Errors
    ///
    /// As [`Network::neuron`], and when the name is taken.
    pub fn neuron_with<R: Rng + ?Sized>(
        &mut self,
        name: &str,
        inputs: &[NodeId],
        activation: Activation,
        init: Init,
        rng: &mut R,
    ) -> Result<NodeId> {
        self.add_node(name, inputs, 1, true, activation, init, rng)
    }

    /// Adds a layer of `units` outputs reading `inputs`, with default initialization for its
    /// activation.
    ///
    /// # Errors
    ///
    /// [`NnError::Node`] when `inputs` is empty or names a node of another network, and
    /// [`NnError::Config`] when `units` is zero.
    pub fn layer<R: Rng + ?Sized>(
        &mut self,
        inputs: &[NodeId],
        units: usize,
        activation: Activation,
        rng: &mut R,
    ) -> Result<NodeId> {
        let name = format!("h{}", self.order.len());
        self.layer_with(
            &name,
            inputs,
            units,
            activation,
            Init::default_for(activation),
            rng,
        )
    }

    /// Adds a named layer with a chosen initializer.
    ///
    /// # Errors
    ///
    /// As [`Network::layer`], and when the name is taken.
    pub fn layer_with<R: Rng + ?Sized>(
        &mut self,
        name: &str,
        inputs: &[NodeId],
        units: usize,
        activation: Activation,
        init: Init,
        rng: &mut R,
    ) -> Result<NodeId> {
        if units == 0 {
            return Err(crate::error::config(
                "layer units",
                "a layer needs at least one unit",
            ));
        }
        self.add_node(name, inputs, units, false, activation, init, rng)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_node<R: Rng + ?Sized>(
        &mut self,
        name: &str,
        inputs: &[NodeId],
        units: usize,
        neuron: bool,
        activation: Activation,
        init: Init,
        rng: &mut R,
    ) -> Result<NodeId> {
        let op = if neuron { "neuron" } else { "layer" };
        if inputs.is_empty() {
            return Err(NnError::Node {
                op,
                reason: format!("node {name:?} has no inputs"),
            });
        }
        if self.order.iter().any(|&id| self.nodes[id].name == name) {
            return Err(NnError::Node {
                op,
                reason: format!("the name {name:?} is taken"),
            });
        }
        let mut fan_in = 0;
        for &i in inputs {
            let node = self.nodes.get(i).ok_or_else(|| NnError::Node {
                op,
                reason: format!("an input of {name:?} is not a node of this network"),
            })?;
            fan_in = usize::checked_add(fan_in, node.width).ok_or_else(|| NnError::Node {
                op,
                reason: format!("the inputs of {name:?} are wider than usize::MAX"),
            })?;
        }
        // Both tensors first: a refused size leaves the network as it was.
        let w = init.try_tensor(&[fan_in, units], fan_in, units, rng)?;
        let b = Tensor::try_zeros(&[units])?;
        let weight = self.params.insert(format!("{name}.weight"), w);
        let bias = self.params.insert(format!("{name}.bias"), b);
        let kind = if neuron {
            NodeKind::Neuron {
                weight,
                bias,
                activation,
            }
        } else {
            NodeKind::Layer {
                weight,
                bias,
                activation,
            }
        };
        let id = self.nodes.insert(Node {
            name: name.into(),
            kind,
            inputs: inputs.to_vec(),
            width: units,
        });
        self.order.push(id);
        Ok(id)
    }

    /// Makes `node` the network's output.
    ///
    /// # Errors
    ///
    /// [`NnError::Node`] when `node` is the input or belongs to another network.
    pub fn set_output(&mut self, node: NodeId) -> Result<()> {
        match self.nodes.get(node) {
            Some(n) if n.kind != NodeKind::Input => {
                self.output = Some(node);
                Ok(())
            }
            Some(_) => Err(NnError::Node {
                op: "set_output",
                reason: "the input node cannot be the output".into(),
            }),
            None => Err(NnError::Node {
                op: "set_output",
                reason: "the node is not part of this network".into(),
            }),
        }
    }

    /// The output node.
    ///
    /// # Errors
    ///
    /// [`NnError::Node`] when no output was set.
    pub fn output(&self) -> Result<NodeId> {
        self.output.ok_or_else(|| NnError::Node {
            op: "output",
            reason: "the network has no output node; call set_output".into(),
        })
    }

    /// The output width (1 for binary classification, k for k classes).
    ///
    /// # Errors
    ///
    /// When no output was set.
    pub fn output_width(&self) -> Result<usize> {
        Ok(self.nodes[self.output()?].width)
    }

    /// The number of neuron and layer nodes (the input is not counted): 1 for logistic
    /// regression.
    pub fn num_nodes(&self) -> usize {
        self.order.len() - 1
    }

    /// The total number of scalar parameters.
    pub fn num_parameters(&self) -> usize {
        self.params.num_elements()
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// The node ids in creation (evaluation) order, the input first.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.order
    }

    /// The id of the node with this name.
    pub fn find_node(&self, name: &str) -> Option<NodeId> {
        self.order
            .iter()
            .copied()
            .find(|&id| self.nodes[id].name == name)
    }

    fn check_input(&self, op: &'static str, shape: &[usize]) -> Result<()> {
        let d = self.input_width();
        if shape.len() != 2 || shape[1] != d {
            return Err(NnError::Data {
                op,
                reason: format!("the network takes inputs of shape [batch, {d}], got {shape:?}"),
            });
        }
        Ok(())
    }

    /// Binds every parameter to a new leaf of `tape` (named after the parameter).
    pub fn bind<'t>(&self, tape: &'t Tape<E>) -> Bound<'t, E> {
        let vars = self
            .params
            .iter()
            .map(|(id, p)| (id, tape.var(p.value.clone()).named_shared(p.name.clone())))
            .collect();
        Bound { vars }
    }

    /// Binds the parameters, in store order ([`ParamStore::ids`]), to the given vars instead of
    /// new leaves: for checking a network's gradients with [`tapegrad_autodiff::gradcheck`], or
    /// for sharing parameters between networks.
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] when the number of vars or a var's shape does not match the parameters.
    pub fn bind_vars<'t>(&self, vars: &[Var<'t, E>]) -> Result<Bound<'t, E>> {
        if vars.len() != self.params.len() {
            return Err(crate::error::data(
                "bind_vars",
                format!("{} vars for {} parameters", vars.len(), self.params.len()),
            ));
        }
        let mut bound = SmallVec::new();
        for ((id, p), v) in self.params.iter().zip(vars) {
            if v.shape().as_slice() != p.value.shape() {
                return Err(crate::error::data(
                    "bind_vars",
                    format!(
                        "parameter {} has shape {:?}, its var {:?}",
                        p.name,
                        p.value.shape(),
                        v.shape().as_slice()
                    ),
                ));
            }
            bound.push((id, *v));
        }
        Ok(Bound { vars: bound })
    }

    /// Runs the network on `x` (`[batch, inputs]`) with parameters bound to the tape, recording
    /// every node. Returns the output node's logits and activation.
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] when `x` is not `[batch, inputs]`, [`NnError::Node`] without an output,
    /// and any error of the ops.
    pub fn forward_bound<'t>(&self, bound: &Bound<'t, E>, x: Var<'t, E>) -> Result<Outputs<'t, E>> {
        self.check_input("forward", &x.shape())?;
        let out = self.output()?;
        // Node outputs by id, inline for small networks (no allocation per step).
        let mut values: SmallVec<[(NodeId, Var<'t, E>); 8]> = SmallVec::new();
        values.push((self.input, x));
        let value_of = |values: &[(NodeId, Var<'t, E>)], id: NodeId| {
            values
                .iter()
                .find(|(n, _)| *n == id)
                .map(|(_, v)| *v)
                .expect("inputs are evaluated before the nodes that read them")
        };
        let mut logits = None;
        for &id in &self.order[1..] {
            let node = &self.nodes[id];
            let input = if node.inputs.len() == 1 {
                value_of(&values, node.inputs[0])
            } else {
                let parts: SmallVec<[Var<'t, E>; 4]> =
                    node.inputs.iter().map(|&i| value_of(&values, i)).collect();
                Var::concat(&parts, 1)?
            };
            let (w, b) = node
                .weight_bias()
                .expect("only the input has no parameters");
            let param = |p: ParamId| {
                bound.var(p).ok_or_else(|| NnError::Node {
                    op: "forward",
                    reason: "parameters were bound from another network".into(),
                })
            };
            let z = input.linear(param(w)?, param(b)?)?;
            let activation = node
                .activation()
                .expect("neurons and layers have an activation");
            if id == out {
                logits = Some((z, activation));
                // The output's activation is left to `Outputs::output` unless a node reads it.
                if !self
                    .order
                    .iter()
                    .any(|&n| self.nodes[n].inputs.contains(&out))
                {
                    continue;
                }
            }
            values.push((id, activation.apply_var(z)?));
        }
        let (logits, activation) = logits.expect("the output node is part of the order");
        Ok(Outputs { logits, activation })
    }

    /// Binds the parameters to `tape` and runs the network on `x`; returns the output
    /// activation.
    ///
    /// # Errors
    ///
    /// As [`Network::forward_bound`].
    pub fn forward<'t>(&self, tape: &'t Tape<E>, x: Var<'t, E>) -> Result<Var<'t, E>> {
        let bound = self.bind(tape);
        self.forward_bound(&bound, x)?.output()
    }

    /// The activations of every node up to and including `target`, without any tape.
    fn evaluate(&self, x: &Tensor<E>, target: NodeId) -> Result<(Tensor<E>, Tensor<E>)> {
        self.check_input("predict", x.shape())?;
        if !self.nodes.contains_key(target) {
            return Err(NnError::Node {
                op: "activations",
                reason: "the node is not part of this network".into(),
            });
        }
        if target == self.input {
            return Ok((x.clone(), x.clone()));
        }
        let mut values: SecondaryMap<NodeKey, Tensor<E>> = SecondaryMap::new();
        values.insert(self.input.key, x.clone());
        for &id in &self.order[1..] {
            let node = &self.nodes[id];
            let joined;
            let input = if node.inputs.len() == 1 {
                &values[node.inputs[0].key]
            } else {
                let parts: Vec<&Tensor<E>> = node.inputs.iter().map(|&i| &values[i.key]).collect();
                joined = Tensor::concat(&parts, 1)?;
                &joined
            };
            let (w, b) = node
                .weight_bias()
                .expect("only the input has no parameters");
            let z = input.linear(&self.params[w], &self.params[b])?;
            let a = node
                .activation()
                .expect("neurons and layers have an activation")
                .apply(&z)?;
            if id == target {
                return Ok((z, a));
            }
            values.insert(id.key, a);
        }
        unreachable!("the target is one of the nodes in order")
    }

    /// The network's output for `x` (`[batch, inputs]`), computed without recording.
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] when `x` is not `[batch, inputs]`; [`NnError::Node`] without an output.
    pub fn predict(&self, x: &Tensor<E>) -> Result<Tensor<E>> {
        Ok(self.evaluate(x, self.output()?)?.1)
    }

    /// The output node's logits (before its activation) for `x`.
    ///
    /// # Errors
    ///
    /// As [`Network::predict`].
    pub fn predict_logits(&self, x: &Tensor<E>) -> Result<Tensor<E>> {
        Ok(self.evaluate(x, self.output()?)?.0)
    }

    /// The outputs of any node for `x`: for a hidden layer, the coordinates of each sample in
    /// the learned feature space.
    ///
    /// # Errors
    ///
    /// As [`Network::predict`], and [`NnError::Node`] for a node of another network.
    pub fn activations(&self, x: &Tensor<E>, node: NodeId) -> Result<Tensor<E>> {
        Ok(self.evaluate(x, node)?.1)
    }

    /// The predicted class per sample: output above 0.5 for one output, the argmax otherwise.
    ///
    /// # Errors
    ///
    /// As [`Network::predict`].
    pub fn predict_classes(&self, x: &Tensor<E>) -> Result<Vec<usize>> {
        let p = self.predict(x)?;
        crate::metrics::classes_of(&p)
    }

    /// A Graphviz DOT drawing of the architecture: one box per node with its kind, width,
    /// activation and parameter count, and an edge per input.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph network {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"sans\"];\n",
        );
        for &id in &self.order {
            let node = &self.nodes[id];
            let label = match node.kind {
                NodeKind::Input => format!("input\\n{} features", node.width),
                _ => format!(
                    "{}: {} x{}\\n{}, {} params",
                    node.name,
                    self.kind_name(node),
                    node.width,
                    node.activation().expect("not the input"),
                    self.node_params(node)
                ),
            };
            let shape = if Some(id) == self.output {
                ", peripheries=2"
            } else {
                ""
            };
            let _ = writeln!(out, "  \"{}\" [label=\"{label}\"{shape}];", node.name);
            for &i in &node.inputs {
                let _ = writeln!(out, "  \"{}\" -> \"{}\";", self.nodes[i].name, node.name);
            }
        }
        out.push_str("}\n");
        out
    }

    fn kind_name(&self, node: &Node) -> &'static str {
        match node.kind {
            NodeKind::Input => "input",
            NodeKind::Neuron { .. } => "neuron",
            NodeKind::Layer { .. } => "layer",
        }
    }

    fn node_params(&self, node: &Node) -> usize {
        node.weight_bias()
            .map_or(0, |(w, b)| self.params[w].len() + self.params[b].len())
    }
}

impl<E: Float> fmt::Display for Network<E> {
    /// A summary: one row per node with its kind, inputs, output shape, activation and
    /// parameter count, then the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<8} {:<7} {:<16} {:<10} {:<9} {:>7}",
            "node", "kind", "inputs", "output", "act", "params"
        )?;
        for &id in &self.order {
            let node = &self.nodes[id];
            let inputs = node
                .inputs
                .iter()
                .map(|&i| self.nodes[i].name.as_str())
                .collect::<Vec<_>>()
                .join(" + ");
            let act = node.activation().map_or("-".to_string(), |a| a.to_string());
            let mark = if Some(id) == self.output {
                " (output)"
            } else {
                ""
            };
            writeln!(
                f,
                "{:<8} {:<7} {:<16} {:<10} {:<9} {:>7}{mark}",
                node.name,
                self.kind_name(node),
                if inputs.is_empty() {
                    "-".into()
                } else {
                    inputs
                },
                format!("[n, {}]", node.width),
                act,
                self.node_params(node)
            )?;
        }
        write!(
            f,
            "{} nodes, {} parameters ({})",
            self.num_nodes(),
            self.num_parameters(),
            E::DTYPE
        )
    }
}
