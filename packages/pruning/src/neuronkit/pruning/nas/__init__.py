"""Understanding ENAS: weight-sharing search, its controller, and what the controller learns.

Adam & Lorraine (2019), "Understanding Neural Architecture Search Techniques"
(arXiv:1904.00438), analysing ENAS (Pham et al. 2018).

- :mod:`.space`: a tiny ENAS-style cell space (DAG of ``B`` nodes, each picks an input node
  and an activation), its token encoding, and graph similarity measures.
- :mod:`.supernet`: the weight-sharing supernet that runs any cell.
- :mod:`.controller`: ENAS's LSTM controller, REINFORCE with a moving-average baseline and an
  entropy bonus, and memory-buffer (replay) training of the controller.
- :mod:`.search`: ENAS search, random search with weight sharing, final evaluation.
- :mod:`.analysis`: correlation between controller hidden states and graph similarity.
"""

from .analysis import (
    HiddenGraphCorrelation,
    hidden_graph_correlation,
    hidden_state_distances,
    position_correlations,
)
from .controller import (
    ControllerSample,
    ENASController,
    MemoryBuffer,
    ReinforceConfig,
    ReinforceTrainer,
)
from .search import SearchConfig, SearchResult, enas_search, final_evaluation, random_search
from .space import (
    DEFAULT_OPS,
    SIMILARITY_METRICS,
    Architecture,
    CellSpace,
    graph_similarity,
    pairwise_graph_similarity,
    random_architectures,
)
from .supernet import FixedCellNet, WeightSharingSupernet, evaluate_architectures

__all__ = [
    "DEFAULT_OPS",
    "SIMILARITY_METRICS",
    "Architecture",
    "CellSpace",
    "ControllerSample",
    "ENASController",
    "FixedCellNet",
    "HiddenGraphCorrelation",
    "MemoryBuffer",
    "ReinforceConfig",
    "ReinforceTrainer",
    "SearchConfig",
    "SearchResult",
    "WeightSharingSupernet",
    "enas_search",
    "evaluate_architectures",
    "final_evaluation",
    "graph_similarity",
    "hidden_graph_correlation",
    "hidden_state_distances",
    "pairwise_graph_similarity",
    "position_correlations",
    "random_architectures",
    "random_search",
]
