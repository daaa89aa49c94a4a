//! Networks as directed acyclic graphs of sigmoid neurons and layers, sums and nodes of your own.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use rand::Rng;
use slotmap::{SlotMap, new_key_type};
use smallvec::SmallVec;
use tapegrad_autodiff::{Tape, Var};
use tapegrad_tensor::{Float, Tensor};

use crate::activation::Activation;
use crate::error::{NnError, Result, config, param};
use crate::init::Init;
use crate::model::{Model, Outputs, in_chunks};
use crate::params::{Bound, ParamId, ParamStore};

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

/// The value of node `id` during a forward walk: `values[i]` is the value of `order[i]`.
/// Searched from the newest, as a chain's node reads the one just before it.
#[inline]
fn value_at<'t, E: Float>(order: &[NodeId], values: &[Var<'t, E>], id: NodeId) -> Var<'t, E> {
    let at = order[..values.len()]
        .iter()
        .rposition(|&n| n == id)
        .expect("inputs are evaluated before the nodes that read them");
    values[at]
}

/// A node's input during a forward walk: its one input's value (a chain's node), or its inputs'
/// values joined along the features ([`joined_inputs`]). Always inlined: the walk of a small
/// network calls it once a node, and a call costs as much as the read.
#[inline(always)]
fn node_input<'t, E: Float>(
    order: &[NodeId],
    values: &[Var<'t, E>],
    inputs: &[NodeId],
) -> Result<Var<'t, E>> {
    match *inputs {
        [one] => Ok(value_at(order, values, one)),
        _ => joined_inputs(order, values, inputs),
    }
}

/// Several inputs' values joined along the features, pushed one by one (`collect` goes
/// through SmallVec's generic `extend`).
fn joined_inputs<'t, E: Float>(
    order: &[NodeId],
    values: &[Var<'t, E>],
    inputs: &[NodeId],
) -> Result<Var<'t, E>> {
    let mut parts: SmallVec<[Var<'t, E>; 4]> = SmallVec::new();
    for &i in inputs {
        parts.push(value_at(order, values, i));
    }
    Ok(Var::concat(&parts, 1)?)
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
#[non_exhaustive]
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
    /// The elementwise sum of its inputs, all of one width: a residual connection.
    Sum,
    /// A node of the user's own type ([`CustomNode`]), the `index`-th added to the network
    /// ([`Network::custom_node`]).
    Custom {
        /// Its position among the network's custom nodes.
        index: usize,
    },
}

/// A node type of your own inside a [`Network`]: its own parameters and a forward written with
/// `Var` ops. [`Network::custom`] creates its parameters (named `NODE.NAME`) in the network's
/// store; training, `Display`, `to_dot` and the checkpoints then treat it like any node.
///
/// ```
/// use rand::{Rng, SeedableRng, rngs::StdRng};
/// use tapegrad_autodiff::Var;
/// use tapegrad_nn::{CustomNode, Init, Model, Network, Result};
/// use tapegrad_tensor::Tensor;
///
/// /// y = x + tanh(x W): a residual block that keeps the width.
/// #[derive(Debug)]
/// struct ResidualTanh;
///
/// impl CustomNode<f32> for ResidualTanh {
///     fn kind(&self) -> &str { "residual tanh" }
///     fn output_width(&self, input_width: usize) -> Result<usize> { Ok(input_width) }
///     fn init(&self, n: usize, rng: &mut dyn Rng) -> Result<Vec<(String, Tensor<f32>)>> {
///         Ok(vec![("weight".into(), Init::XavierUniform.try_tensor(&[n, n], n, n, rng)?)])
///     }
///     fn forward<'t>(&self, p: &[Var<'t, f32>], x: Var<'t, f32>) -> Result<Var<'t, f32>> {
///         Ok(x + x.matmul(p[0])?.tanh())
///     }
/// }
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut net = Network::<f32>::new(4);
/// let block = net.custom("block", &[net.input()], ResidualTanh, &mut rng)?;
/// let out = net.neuron(&[block], tapegrad_nn::Activation::Sigmoid, &mut rng)?;
/// net.set_output(out)?;
/// assert!(net.to_string().contains("residual tanh"));
/// assert_eq!(net.param("block.weight").map(|w| w.shape().to_vec()), Some(vec![4, 4]));
/// assert_eq!(net.predict(&Tensor::zeros(&[2, 4]))?.shape(), &[2, 1]);
/// # Ok::<(), tapegrad_nn::NnError>(())
/// ```
pub trait CustomNode<E: Float>: fmt::Debug + Send + Sync {
    /// What the node is, for `Display` and `to_dot` (for example `"residual tanh"`).
    fn kind(&self) -> &str;

    /// The node's output width for an input of `input_width` features.
    ///
    /// # Errors
    ///
    /// When the node cannot take that width.
    fn output_width(&self, input_width: usize) -> Result<usize>;

    /// The node's parameters for an input of `input_width` features, in the order
    /// [`CustomNode::forward`] receives them: (name within the node, initial value).
    ///
    /// # Errors
    ///
    /// When a tensor cannot be made (sizes, memory).
    fn init(&self, input_width: usize, rng: &mut dyn Rng) -> Result<Vec<(String, Tensor<E>)>>;

    /// The node's output `[batch, output_width]` for its input `[batch, input_width]`, with its
    /// parameters bound to the tape in the order [`CustomNode::init`] gave them.
    ///
    /// # Errors
    ///
    /// Any error of the ops.
    fn forward<'t>(&self, params: &[Var<'t, E>], x: Var<'t, E>) -> Result<Var<'t, E>>;
}

/// A custom node with the ids of its parameters.
#[derive(Debug, Clone)]
struct CustomEntry<E: Float> {
    node: Arc<dyn CustomNode<E>>,
    params: Vec<ParamId>,
}

/// One node of a network.
#[derive(Debug, Clone)]
pub struct Node {
    /// A unique name (`input`, `h1`, `out`, ...), used for parameters and drawings.
    pub name: String,
    /// What it computes.
    pub kind: NodeKind,
    /// The nodes whose outputs, concatenated in this order, are its input (summed, for a
    /// [`NodeKind::Sum`]).
    pub inputs: Vec<NodeId>,
    /// Its output width.
    pub width: usize,
}

impl Node {
    /// The activation of a neuron or layer (`None` for the input, sums and custom nodes).
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Network};
    /// let net = Network::<f32>::logistic_regression(2, &mut StdRng::seed_from_u64(0));
    /// let out = net.node(net.output()?).unwrap();
    /// assert_eq!(out.activation(), Some(Activation::Sigmoid));
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn activation(&self) -> Option<Activation> {
        match self.kind {
            NodeKind::Input | NodeKind::Sum | NodeKind::Custom { .. } => None,
            NodeKind::Neuron { activation, .. } | NodeKind::Layer { activation, .. } => {
                Some(activation)
            }
        }
    }
}

/// A directed acyclic graph of neurons, layers, sums and custom nodes over `n` input features,
/// generic over `f32` (the default) and `f64`. It implements [`Model`], so everything that
/// trains or evaluates a model takes it.
///
/// Nodes are added in order and may only read earlier nodes, so the graph is acyclic by
/// construction. A node with several inputs reads their outputs concatenated, which is how skip
/// connections and other shapes are written; [`Network::sum`] adds outputs instead (a residual
/// connection):
///
/// ```
/// use tapegrad_nn::{Activation, Model, Network};
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
    customs: Vec<CustomEntry<E>>,
}

impl<E: Float> Network<E> {
    /// An empty network over `n_inputs` features: only the input node, no output yet.
    ///
    /// ```
    /// let net = tapegrad_nn::Network::<f32>::new(3);
    /// assert_eq!(net.input_width(), 3);
    /// assert_eq!(net.num_nodes(), 0);
    /// assert!(net.output().is_err());
    /// ```
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
            customs: Vec::new(),
        }
    }

    /// Logistic regression: one sigmoid [`NodeKind::Neuron`] named `out` on the inputs, so
    /// `num_nodes() == 1`; its parameters are `out.weight` (`[n_inputs, 1]`) and `out.bias`
    /// (`[1]`). Weights start at zero (the problem is convex).
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f64>::logistic_regression(30, &mut StdRng::seed_from_u64(0));
    /// assert_eq!(net.num_nodes(), 1);
    /// assert_eq!(net.param("out.weight").unwrap().shape(), &[30, 1]);
    /// assert_eq!(net.param("out.bias").unwrap().shape(), &[1]);
    /// ```
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

    /// Multinomial logistic (softmax) regression: one [`NodeKind::Layer`] named `out` of
    /// `n_classes` units with a softmax output; its parameters are `out.weight`
    /// (`[n_inputs, n_classes]`) and `out.bias` (`[n_classes]`). Weights start at zero.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::softmax_regression(64, 10, &mut StdRng::seed_from_u64(0));
    /// assert_eq!(net.param("out.weight").unwrap().shape(), &[64, 10]);
    /// assert_eq!(net.output_width()?, 10);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
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
    /// The hidden layers are named `h1`, `h2`, ... and the output `out`; each node's parameters
    /// are `NAME.weight` (`[inputs, units]`) and `NAME.bias` (`[units]`).
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Model, Network};
    /// let net = Network::<f32>::mlp(&[784, 256, 10], &mut StdRng::seed_from_u64(0));
    /// let names: Vec<&str> = net.params.iter().map(|(_, p)| p.name()).collect();
    /// assert_eq!(names, ["h1.weight", "h1.bias", "out.weight", "out.bias"]);
    /// assert_eq!(net.num_parameters(), 784 * 256 + 256 + 256 * 10 + 10);
    /// ```
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
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Network};
    /// let net = Network::<f32>::try_mlp(&[2, 16, 16, 1], Activation::Relu, &mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(net.num_nodes(), 3);
    /// assert!(Network::<f32>::try_mlp(&[2], Activation::Relu, &mut StdRng::seed_from_u64(0)).is_err());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
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
        let out = if sizes.last() == Some(&1) {
            Activation::Sigmoid
        } else {
            Activation::Softmax
        };
        Self::mlp_with(sizes, hidden, out, rng)
    }

    /// A multi-layer perceptron with both activations chosen: `hidden` for the hidden layers,
    /// `output` for the output node (named as in [`Network::mlp`]). With
    /// [`Activation::Identity`] the output is linear: a regression network, trained with mean
    /// squared error.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Model, Network};
    /// use tapegrad_tensor::Tensor;
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let net = Network::<f64>::mlp_with(&[1, 8, 2], Activation::Tanh, Activation::Identity, &mut rng)?;
    /// assert_eq!(net.output_activation(), Activation::Identity);
    /// assert_eq!(net.predict(&Tensor::zeros(&[3, 1]))?.shape(), &[3, 2]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Network::try_mlp`], and when `output` is softmax over a single output.
    pub fn mlp_with<R: Rng + ?Sized>(
        sizes: &[usize],
        hidden: Activation,
        output: Activation,
        rng: &mut R,
    ) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(config(
                "mlp sizes",
                format!("need [inputs, hidden..., outputs], all above zero, got {sizes:?}"),
            ));
        }
        if hidden == Activation::Softmax {
            return Err(config(
                "mlp hidden activation",
                "softmax is an output activation",
            ));
        }
        let out = *sizes.last().expect("two or more sizes");
        if out == 1 && output == Activation::Softmax {
            return Err(config(
                "mlp output activation",
                "softmax over one output is always 1; use sigmoid",
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
        let init = if output == Activation::Relu {
            Init::default_for(output)
        } else {
            Init::XavierUniform
        };
        let y = if out == 1 {
            net.neuron_with("out", &[prev], output, init, rng)?
        } else {
            net.layer_with("out", &[prev], out, output, init, rng)?
        };
        net.set_output(y)?;
        Ok(net)
    }

    /// The input node.
    ///
    /// ```
    /// let net = tapegrad_nn::Network::<f32>::new(2);
    /// assert_eq!(net.node(net.input()).unwrap().name, "input");
    /// ```
    pub fn input(&self) -> NodeId {
        self.input
    }

    /// The number of input features.
    ///
    /// ```
    /// assert_eq!(tapegrad_nn::Network::<f32>::new(7).input_width(), 7);
    /// ```
    pub fn input_width(&self) -> usize {
        self.nodes[self.input].width
    }

    /// Adds a neuron (n inputs to 1 output) reading `inputs`, with default initialization for
    /// its activation. It is named `nK`, K its position.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Network};
    /// let mut net = Network::<f32>::new(3);
    /// let n = net.neuron(&[net.input()], Activation::Tanh, &mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(net.node(n).unwrap().width, 1);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
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

    /// Adds a named neuron with a chosen initializer; its parameters are `NAME.weight` and
    /// `NAME.bias`.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Init, Network};
    /// let mut net = Network::<f32>::new(2);
    /// let input = net.input();
    /// net.neuron_with("y", &[input], Activation::Sigmoid, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(net.param("y.weight").unwrap().to_vec(), vec![0.0, 0.0]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
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
    /// activation. It is named `hK`, K its position.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Network};
    /// let mut net = Network::<f32>::new(3);
    /// let h = net.layer(&[net.input()], 5, Activation::Relu, &mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(net.node(h).unwrap().width, 5);
    /// assert!(net.layer(&[net.input()], 0, Activation::Relu, &mut StdRng::seed_from_u64(0)).is_err());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
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

    /// Adds a named layer with a chosen initializer; its parameters are `NAME.weight` and
    /// `NAME.bias`.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Init, Network};
    /// let mut net = Network::<f32>::new(2);
    /// let input = net.input();
    /// net.layer_with("enc", &[input], 4, Activation::Tanh, Init::Constant(0.5), &mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(net.param("enc.weight").unwrap().to_vec(), vec![0.5; 8]);
    /// assert!(net.layer_with("enc", &[input], 4, Activation::Tanh, Init::Zeros, &mut StdRng::seed_from_u64(0)).is_err());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
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
            return Err(config("layer units", "a layer needs at least one unit"));
        }
        self.add_node(name, inputs, units, false, activation, init, rng)
    }

    /// Adds a node that sums its inputs elementwise (a residual connection: `x + f(x)`). It is
    /// named `sK`, K its position.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Model, Network};
    /// use tapegrad_tensor::Tensor;
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let mut net = Network::<f64>::new(4);
    /// let f = net.layer(&[net.input()], 4, Activation::Tanh, &mut rng)?;
    /// let res = net.sum(&[net.input(), f])?;
    /// let out = net.layer(&[res], 3, Activation::Identity, &mut rng)?;
    /// net.set_output(out)?;
    /// let x = Tensor::ones(&[2, 4]);
    /// let expected = &x + &net.activations(&x, f)?;
    /// assert_eq!(net.activations(&x, res)?, expected);
    /// assert!(net.sum(&[net.input(), out]).is_err()); // widths 4 and 3
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NnError::Node`] when `inputs` is empty, names a node of another network, or holds
    /// nodes of different widths (named).
    pub fn sum(&mut self, inputs: &[NodeId]) -> Result<NodeId> {
        let name = format!("s{}", self.order.len());
        let widths = self.input_widths("sum", &name, inputs)?;
        if let Some((i, _)) = widths.iter().enumerate().find(|&(_, &w)| w != widths[0]) {
            return Err(NnError::Node {
                op: "sum",
                reason: format!(
                    "a sum needs inputs of one width: {:?} is {} wide, {:?} {}",
                    self.nodes[inputs[0]].name, widths[0], self.nodes[inputs[i]].name, widths[i]
                ),
            });
        }
        Ok(self.push_node(name, NodeKind::Sum, inputs, widths[0]))
    }

    /// Adds a node of your own type ([`CustomNode`]) reading `inputs` (concatenated); its
    /// parameters are created by [`CustomNode::init`] in the network's store as
    /// `NAME.PARAM`.
    ///
    /// ```
    /// use rand::{Rng, SeedableRng, rngs::StdRng};
    /// use tapegrad_autodiff::Var;
    /// use tapegrad_nn::{CustomNode, Model, Network, Result};
    /// use tapegrad_tensor::Tensor;
    ///
    /// /// x * s, one learned scale per feature.
    /// #[derive(Debug)]
    /// struct Scale;
    /// impl CustomNode<f64> for Scale {
    ///     fn kind(&self) -> &str { "scale" }
    ///     fn output_width(&self, n: usize) -> Result<usize> { Ok(n) }
    ///     fn init(&self, n: usize, _: &mut dyn Rng) -> Result<Vec<(String, Tensor<f64>)>> {
    ///         Ok(vec![("s".into(), Tensor::full(&[n], 2.0))])
    ///     }
    ///     fn forward<'t>(&self, p: &[Var<'t, f64>], x: Var<'t, f64>) -> Result<Var<'t, f64>> {
    ///         Ok(x.mul(p[0])?)
    ///     }
    /// }
    ///
    /// let mut net = Network::<f64>::new(3);
    /// let s = net.custom("scale", &[net.input()], Scale, &mut StdRng::seed_from_u64(0))?;
    /// net.set_output(s)?;
    /// assert_eq!(net.predict(&Tensor::ones(&[1, 3]))?.to_vec(), vec![2.0; 3]);
    /// assert!(net.custom("scale", &[net.input()], Scale, &mut StdRng::seed_from_u64(0)).is_err());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Network::layer`], when the name is taken, and whatever the node's
    /// `output_width` or `init` refuses. On an error the network is unchanged.
    pub fn custom<R: Rng>(
        &mut self,
        name: &str,
        inputs: &[NodeId],
        node: impl CustomNode<E> + 'static,
        rng: &mut R,
    ) -> Result<NodeId> {
        let widths = self.input_widths("custom", name, inputs)?;
        self.check_name("custom", name)?;
        let fan_in = widths
            .iter()
            .try_fold(0usize, |a, &w| a.checked_add(w))
            .ok_or_else(|| NnError::Node {
                op: "custom",
                reason: format!("the inputs of {name:?} are wider than usize::MAX"),
            })?;
        let width = node.output_width(fan_in)?;
        let tensors = node.init(fan_in, rng)?;
        let mut seen = std::collections::HashSet::new();
        if let Some((p, _)) = tensors.iter().find(|(p, _)| !seen.insert(p.as_str())) {
            return Err(NnError::Node {
                op: "custom",
                reason: format!("node {name:?} gave two parameters named {p:?}"),
            });
        }
        let params = tensors
            .into_iter()
            .map(|(p, t)| self.params.insert(format!("{name}.{p}"), t))
            .collect();
        let index = self.customs.len();
        self.customs.push(CustomEntry {
            node: Arc::new(node),
            params,
        });
        Ok(self.push_node(name.into(), NodeKind::Custom { index }, inputs, width))
    }

    /// The custom node behind a [`NodeKind::Custom`] node, and its parameter ids in the order
    /// its forward receives them.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Network};
    /// let net = Network::<f32>::mlp(&[2, 2, 1], &mut StdRng::seed_from_u64(0));
    /// assert!(net.custom_node(net.output()?).is_none()); // a neuron, not a custom node
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn custom_node(&self, id: NodeId) -> Option<(&dyn CustomNode<E>, &[ParamId])> {
        match self.nodes.get(id)?.kind {
            NodeKind::Custom { index } => {
                let e = &self.customs[index];
                Some((&*e.node, &e.params))
            }
            _ => None,
        }
    }

    /// The widths of `inputs`, checked to be nodes of this network.
    fn input_widths(
        &self,
        op: &'static str,
        name: &str,
        inputs: &[NodeId],
    ) -> Result<SmallVec<[usize; 4]>> {
        if inputs.is_empty() {
            return Err(NnError::Node {
                op,
                reason: format!("node {name:?} has no inputs"),
            });
        }
        inputs
            .iter()
            .map(|&i| {
                self.nodes
                    .get(i)
                    .map(|n| n.width)
                    .ok_or_else(|| NnError::Node {
                        op,
                        reason: format!("an input of {name:?} is not a node of this network"),
                    })
            })
            .collect()
    }

    fn check_name(&self, op: &'static str, name: &str) -> Result<()> {
        if self.order.iter().any(|&id| self.nodes[id].name == name) {
            return Err(NnError::Node {
                op,
                reason: format!("the name {name:?} is taken"),
            });
        }
        Ok(())
    }

    fn push_node(
        &mut self,
        name: String,
        kind: NodeKind,
        inputs: &[NodeId],
        width: usize,
    ) -> NodeId {
        let id = self.nodes.insert(Node {
            name,
            kind,
            inputs: inputs.to_vec(),
            width,
        });
        self.order.push(id);
        id
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
        let widths = self.input_widths(op, name, inputs)?;
        self.check_name(op, name)?;
        let fan_in = widths
            .iter()
            .try_fold(0usize, |a, &w| a.checked_add(w))
            .ok_or_else(|| NnError::Node {
                op,
                reason: format!("the inputs of {name:?} are wider than usize::MAX"),
            })?;
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
        Ok(self.push_node(name.into(), kind, inputs, units))
    }

    /// Makes `node` the network's output.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Activation, Network};
    /// let mut net = Network::<f32>::new(2);
    /// let y = net.neuron(&[net.input()], Activation::Sigmoid, &mut StdRng::seed_from_u64(0))?;
    /// net.set_output(y)?;
    /// assert_eq!(net.output()?, y);
    /// assert!(net.set_output(net.input()).is_err());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
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
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(0));
    /// assert_eq!(net.node(net.output()?).unwrap().name, "out");
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
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
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::mlp(&[4, 8, 3], &mut StdRng::seed_from_u64(0));
    /// assert_eq!(net.output_width()?, 3);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When no output was set.
    pub fn output_width(&self) -> Result<usize> {
        Ok(self.nodes[self.output()?].width)
    }

    /// The number of nodes, the input not counted: 1 for logistic regression.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::mlp(&[2, 4, 4, 1], &mut StdRng::seed_from_u64(0));
    /// assert_eq!(net.num_nodes(), 3);
    /// ```
    pub fn num_nodes(&self) -> usize {
        self.order.len() - 1
    }

    /// The node with this id; `None` for another network's id.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::mlp(&[2, 4, 1], &mut StdRng::seed_from_u64(0));
    /// let other = Network::<f32>::new(2);
    /// assert!(net.node(net.input()).is_some());
    /// assert!(net.node(other.input()).is_none());
    /// ```
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// The node ids in creation (evaluation) order, the input first.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::mlp(&[2, 4, 1], &mut StdRng::seed_from_u64(0));
    /// let names: Vec<&str> = net.node_ids().iter().map(|&id| net.node(id).unwrap().name.as_str()).collect();
    /// assert_eq!(names, ["input", "h1", "out"]);
    /// ```
    pub fn node_ids(&self) -> &[NodeId] {
        &self.order
    }

    /// The id of the node with this name.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::mlp(&[2, 4, 1], &mut StdRng::seed_from_u64(0));
    /// assert_eq!(net.find_node("out"), Some(net.output()?));
    /// assert_eq!(net.find_node("h9"), None);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn find_node(&self, name: &str) -> Option<NodeId> {
        self.order
            .iter()
            .copied()
            .find(|&id| self.nodes[id].name == name)
    }

    /// The parameter with this name (`h1.weight`, `out.bias`; see the constructors for the
    /// names they give).
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::mlp(&[3, 4, 1], &mut StdRng::seed_from_u64(0));
    /// assert_eq!(net.param("h1.weight").unwrap().shape(), &[3, 4]);
    /// assert!(net.param("h1.gamma").is_none());
    /// ```
    pub fn param(&self, name: &str) -> Option<&Tensor<E>> {
        self.params.find(name).map(|id| &self.params[id])
    }

    /// Replaces the parameter with this name by `value`, which must have its shape (loading
    /// given weights). A refused value changes nothing.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Model, Network};
    /// use tapegrad_tensor::Tensor;
    /// let mut net = Network::<f64>::logistic_regression(2, &mut StdRng::seed_from_u64(0));
    /// net.set_param("out.weight", Tensor::from_vec(vec![1.0, -1.0], &[2, 1])?)?;
    /// net.set_param("out.bias", Tensor::from_vec(vec![0.5], &[1])?)?;
    /// let p = net.predict(&Tensor::from_vec(vec![2.0, 2.0], &[1, 2])?)?;
    /// assert_eq!(p.to_vec(), vec![1.0 / (1.0 + (-0.5f64).exp())]);
    /// let err = net.set_param("out.weight", Tensor::zeros(&[3, 1])).unwrap_err();
    /// assert!(err.to_string().contains("[2, 1]") && err.to_string().contains("[3, 1]"));
    /// assert!(net.set_param("h1.weight", Tensor::zeros(&[2, 1])).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NnError::Param`] when no parameter has this name (the names there are, listed) or the
    /// shapes differ (both named).
    pub fn set_param(&mut self, name: &str, value: Tensor<E>) -> Result<()> {
        let Some(id) = self.params.find(name) else {
            let names: Vec<&str> = self.params.iter().map(|(_, p)| p.name()).collect();
            return Err(param(
                "set_param",
                name,
                format!("no parameter has this name; the network has {names:?}"),
            ));
        };
        self.params.set(id, value)
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

    /// Binds every parameter to a leaf of `tape` that shares its value ([`ParamStore::bind`]).
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(0));
    /// let tape = Tape::new();
    /// let bound = net.bind(&tape);
    /// assert_eq!(bound.iter().count(), 4); // h1.weight, h1.bias, out.weight, out.bias
    /// assert_eq!(tape.len(), 4);
    /// ```
    pub fn bind<'t>(&self, tape: &'t Tape<E>) -> Bound<'t, E> {
        self.params.bind(tape)
    }

    /// Binds the parameters, in store order, to the given vars ([`ParamStore::bind_vars`]):
    /// for checking a network's gradients with [`tapegrad_autodiff::gradcheck`], or for sharing
    /// parameters between networks.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::Network;
    /// let net = Network::<f64>::logistic_regression(2, &mut StdRng::seed_from_u64(0));
    /// let tape = Tape::new();
    /// let vars: Vec<_> = net.params.iter().map(|(_, p)| tape.var(p.value().clone())).collect();
    /// assert!(net.bind_vars(&vars).is_ok());
    /// assert!(net.bind_vars(&vars[..1]).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] when the number of vars or a var's shape does not match the parameters.
    pub fn bind_vars<'t>(&self, vars: &[Var<'t, E>]) -> Result<Bound<'t, E>> {
        self.params.bind_vars(vars)
    }

    /// Runs the network on `x` (`[batch, inputs]`) with parameters bound to the tape, recording
    /// every node. Returns the output node's logits and activation.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::Network;
    /// use tapegrad_tensor::Tensor;
    /// let net = Network::<f32>::mlp(&[2, 4, 3], &mut StdRng::seed_from_u64(0));
    /// let tape = Tape::new();
    /// let out = net.forward_bound(&net.bind(&tape), tape.constant(Tensor::zeros(&[5, 2])))?;
    /// assert_eq!(out.logits.shape().as_slice(), &[5, 3]);
    /// let p = out.output()?.value(); // softmax rows
    /// assert!((p.as_slice()[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] when `x` is not `[batch, inputs]`, [`NnError::Node`] without an output
    /// or when `bound` holds another network's parameters, and any error of the ops.
    pub fn forward_bound<'t>(&self, bound: &Bound<'t, E>, x: Var<'t, E>) -> Result<Outputs<'t, E>> {
        let out = self.output()?;
        // The output's activation is left to `Outputs::output` unless a node reads it (none
        // can when it is last: nodes read only nodes before them).
        let read = self.order.last() != Some(&out)
            && self
                .order
                .iter()
                .any(|&n| self.nodes[n].inputs.contains(&out));
        let (z, _) = self.run(bound, x, out, read)?;
        let activation = self.nodes[out].activation().unwrap_or(Activation::Identity);
        Ok(Outputs::new(z, activation))
    }

    /// Records the nodes up to `target` and returns its value before and after its activation
    /// (the same var for nodes without one); `activate` false skips the target's activation.
    fn run<'t>(
        &self,
        bound: &Bound<'t, E>,
        x: Var<'t, E>,
        target: NodeId,
        activate: bool,
    ) -> Result<(Var<'t, E>, Var<'t, E>)> {
        // The shape read in place (`Var::shape` copies it).
        x.with_value(|v| self.check_input("forward", v.shape()))?;
        if target == self.input {
            return Ok((x, x));
        }
        // Node outputs in `order`'s order (`values[i]` is `order[i]`'s), inline for small
        // networks (no allocation per step).
        let mut values: SmallVec<[Var<'t, E>; 8]> = SmallVec::new();
        values.push(x);
        let order = &self.order[..];
        let param = |p: ParamId| {
            bound.var(p).ok_or_else(|| NnError::Node {
                op: "forward",
                reason: "parameters were bound from another network".into(),
            })
        };
        for &id in &self.order[1..] {
            let node = &self.nodes[id];
            let is_target = id == target;
            let (z, activation) = match node.kind {
                NodeKind::Input => unreachable!("the input is not in order[1..]"),
                NodeKind::Neuron {
                    weight,
                    bias,
                    activation,
                }
                | NodeKind::Layer {
                    weight,
                    bias,
                    activation,
                } => {
                    let (input, w, b) = (
                        node_input(order, &values, &node.inputs)?,
                        param(weight)?,
                        param(bias)?,
                    );
                    // A hidden layer's value is its activation: one fused node where the
                    // activation has one (the target's own value before it may be asked for).
                    if !is_target && let Some(a) = activation.dense_var(input, w, b)? {
                        values.push(a);
                        continue;
                    }
                    (input.linear(w, b)?, Some(activation))
                }
                NodeKind::Sum => {
                    let mut acc = value_at(order, &values, node.inputs[0]);
                    for &i in &node.inputs[1..] {
                        acc = acc + value_at(order, &values, i);
                    }
                    (acc, None)
                }
                NodeKind::Custom { index } => {
                    let entry = &self.customs[index];
                    let vars = entry
                        .params
                        .iter()
                        .map(|&p| param(p))
                        .collect::<Result<SmallVec<[Var<'t, E>; 4]>>>()?;
                    let y = entry
                        .node
                        .forward(&vars, node_input(order, &values, &node.inputs)?)?;
                    let want = [y.shape().first().copied().unwrap_or(0), node.width];
                    if y.shape().as_slice() != want {
                        return Err(NnError::Node {
                            op: "forward",
                            reason: format!(
                                "custom node {:?} ({}) returned shape {:?}, it declared width {}",
                                node.name,
                                entry.node.kind(),
                                y.shape().as_slice(),
                                node.width
                            ),
                        });
                    }
                    (y, None)
                }
            };
            let a = match activation {
                Some(act) if !is_target || activate => act.apply_var(z)?,
                _ => z,
            };
            if is_target {
                return Ok((z, a));
            }
            values.push(a);
        }
        unreachable!("the target is one of the nodes in order")
    }

    /// The outputs of any node for `x` (after its activation), computed without gradients: for
    /// a hidden layer, the coordinates of each sample in the learned feature space.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// use tapegrad_tensor::Tensor;
    /// let net = Network::<f32>::mlp(&[2, 5, 1], &mut StdRng::seed_from_u64(0));
    /// let h1 = net.find_node("h1").unwrap();
    /// let features = net.activations(&Tensor::zeros(&[3, 2]), h1)?;
    /// assert_eq!(features.shape(), &[3, 5]);
    /// // Zero input, zero biases: each sigmoid unit sits at 0.5.
    /// assert!(features.as_slice().iter().all(|&v| v == 0.5));
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] when `x` is not `[batch, inputs]`, and [`NnError::Node`] for a node of
    /// another network.
    pub fn activations(&self, x: &Tensor<E>, node: NodeId) -> Result<Tensor<E>> {
        self.check_input("activations", x.shape())?;
        if !self.nodes.contains_key(node) {
            return Err(NnError::Node {
                op: "activations",
                reason: "the node is not part of this network".into(),
            });
        }
        in_chunks(self, x, |bound, xb| {
            self.run(bound, xb, node, true).map(|(_, a)| a)
        })
    }

    /// A Graphviz DOT drawing of the architecture: one box per node with its kind, width,
    /// activation and parameter count, and an edge per input.
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::mlp(&[2, 3, 1], &mut StdRng::seed_from_u64(0));
    /// let dot = net.to_dot();
    /// assert!(dot.starts_with("digraph network {"));
    /// assert!(dot.contains("\"input\" -> \"h1\";"));
    /// assert!(dot.contains("h1: layer x3"));
    /// ```
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph network {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"sans\"];\n",
        );
        for &id in &self.order {
            let node = &self.nodes[id];
            let label = match node.kind {
                NodeKind::Input => format!("input\\n{} features", node.width),
                _ => format!(
                    "{}: {} x{}\\n{}{} params",
                    node.name,
                    self.kind_name(node),
                    node.width,
                    node.activation()
                        .map_or(String::new(), |a| format!("{a}, ")),
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

    /// The kind of a node as `Display` and `to_dot` show it: input, neuron, layer, sum, or a
    /// custom node's own [`CustomNode::kind`].
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::Network;
    /// let net = Network::<f32>::logistic_regression(3, &mut StdRng::seed_from_u64(0));
    /// let out = net.output()?;
    /// assert_eq!(net.kind_name(net.node(out).unwrap()), "neuron");
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn kind_name<'a>(&'a self, node: &Node) -> &'a str {
        match node.kind {
            NodeKind::Input => "input",
            NodeKind::Neuron { .. } => "neuron",
            NodeKind::Layer { .. } => "layer",
            NodeKind::Sum => "sum",
            NodeKind::Custom { index } => self.customs[index].node.kind(),
        }
    }

    fn node_params(&self, node: &Node) -> usize {
        self.node_param_ids(node)
            .iter()
            .map(|&p| self.params[p].len())
            .sum()
    }

    fn node_param_ids(&self, node: &Node) -> SmallVec<[ParamId; 4]> {
        match node.kind {
            NodeKind::Input | NodeKind::Sum => SmallVec::new(),
            NodeKind::Neuron { weight, bias, .. } | NodeKind::Layer { weight, bias, .. } => {
                SmallVec::from_slice(&[weight, bias])
            }
            NodeKind::Custom { index } => SmallVec::from_slice(&self.customs[index].params),
        }
    }
}

impl<E: Float> Model<E> for Network<E> {
    fn params(&self) -> &ParamStore<E> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore<E> {
        &mut self.params
    }

    fn input_features(&self) -> Option<usize> {
        Some(Network::input_width(self))
    }

    /// The output node's width (`None` without an output: forward then says why).
    fn output_features(&self) -> Option<usize> {
        self.output_width().ok()
    }

    /// The output node's logits (`x W + b`; the sum or custom node's value when the output is
    /// one of those).
    fn forward<'t>(&self, bound: &Bound<'t, E>, x: Var<'t, E>) -> Result<Var<'t, E>> {
        Ok(self.forward_bound(bound, x)?.logits)
    }

    /// The output node's activation (identity for a sum or custom output), or identity when no
    /// output is set (forward then fails with the reason).
    fn output_activation(&self) -> Activation {
        self.output
            .and_then(|o| self.nodes[o].activation())
            .unwrap_or(Activation::Identity)
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
