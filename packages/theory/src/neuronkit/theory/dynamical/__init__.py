"""Open dynamical systems, wiring diagrams, and deep learning as nested systems.

Spivak & Hosgood, "Deep neural networks as nested dynamical systems" (2021):

* :mod:`.systems`: discrete-time open systems with typed ports (readout ``S -> O``, update
  ``S x I -> S``, declared instantaneous feedthrough), :func:`simulate`;
* :mod:`.wiring`: wiring diagrams, composition (:func:`compose`), nesting and operad
  substitution, algebraic-loop detection;
* :mod:`.learners`: layers and single "neurons" as systems whose state is their weights, wires
  carrying activations forward and gradients back, an MLP's SGD training as one nested system;
* :mod:`.control`: a control loop whose controller holds a learner (a deeply interacting
  learning system).
"""

from .control import (
    adaptive_controller,
    certainty_equivalence_policy,
    closed_loop,
    first_order_plant,
    signal_source,
    tracking_error,
)
from .learners import (
    ACTIVATIONS,
    DenseState,
    NeuronState,
    copier,
    cross_entropy_loss_system,
    data_stream,
    dense_backward,
    dense_forward,
    dense_learner,
    gatherer,
    layer_parameters,
    minibatch_schedule,
    mlp_diagram,
    mlp_learner,
    mlp_parameters,
    mse_loss_system,
    neuron_layer,
    neuron_layer_diagram,
    neuron_learner,
    supervised_training_diagram,
    training_system,
)
from .systems import (
    DynamicalSystem,
    OpenSystem,
    Port,
    PrimitiveSystem,
    Tick,
    Trajectory,
    constant,
    delay,
    function_system,
    simulate,
)
from .wiring import OUTER, AlgebraicLoopError, Box, ComposedSystem, WiringDiagram, compose

__all__ = [
    "ACTIVATIONS",
    "OUTER",
    "AlgebraicLoopError",
    "Box",
    "ComposedSystem",
    "DenseState",
    "DynamicalSystem",
    "NeuronState",
    "OpenSystem",
    "Port",
    "PrimitiveSystem",
    "Tick",
    "Trajectory",
    "WiringDiagram",
    "adaptive_controller",
    "certainty_equivalence_policy",
    "closed_loop",
    "compose",
    "constant",
    "copier",
    "cross_entropy_loss_system",
    "data_stream",
    "delay",
    "dense_backward",
    "dense_forward",
    "dense_learner",
    "first_order_plant",
    "function_system",
    "gatherer",
    "layer_parameters",
    "minibatch_schedule",
    "mlp_diagram",
    "mlp_learner",
    "mlp_parameters",
    "mse_loss_system",
    "neuron_layer",
    "neuron_layer_diagram",
    "neuron_learner",
    "signal_source",
    "simulate",
    "supervised_training_diagram",
    "tracking_error",
    "training_system",
]
