"""Data generators and loaders (nothing is downloaded): digits-based BlockDigits, the synthetic
``y * e_j`` signal-coordinate task, noisy simulated measurements of layer responses, the 12-bit
information-plane task, object-in-context images, simulated cell-type populations, digits with
planted facets, compositional scenes with planted-selectivity units, and TokFSM sequences."""

from .block_digits import BlockDigits, block_digits, load_digits
from .cell_types import LNPopulation, on_off_population, orientation_population
from .compositional import (
    CompositionalImages,
    PlantedConceptNet,
    annotate,
    compositional_images,
    planted_population,
)
from .facets import MultifacetedDigits, multifaceted_digits
from .object_context import ObjectContextData, object_context
from .responses import noisy_responses
from .synthetic import SignalCoordinateData, signal_coordinate_data
from .tokfsm import TokFSM, TokFSMSample, random_tokfsm
from .twelve_bit import TwelveBitTask, all_binary_inputs, icosahedron_vertices, twelve_bit_task

__all__ = [
    "BlockDigits",
    "CompositionalImages",
    "LNPopulation",
    "MultifacetedDigits",
    "ObjectContextData",
    "PlantedConceptNet",
    "SignalCoordinateData",
    "TokFSM",
    "TokFSMSample",
    "TwelveBitTask",
    "all_binary_inputs",
    "annotate",
    "block_digits",
    "compositional_images",
    "icosahedron_vertices",
    "load_digits",
    "multifaceted_digits",
    "noisy_responses",
    "object_context",
    "on_off_population",
    "orientation_population",
    "planted_population",
    "random_tokfsm",
    "signal_coordinate_data",
    "twelve_bit_task",
]
