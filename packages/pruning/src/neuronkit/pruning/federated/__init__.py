"""Federated lottery tickets: HideNseek (Vallapuram et al., 2022).

"HideNseek: Federated Lottery Ticket via Server-side Pruning and Sign Supermask": the server
prunes a randomly initialized network once, without data, by iterative SynFlow
(:mod:`.synflow`); clients then learn only a sign supermask in {-1, +1} over the frozen
unpruned magnitudes (:mod:`.supermask`) on non-IID data (:mod:`.partition`), uploading one bit
per unpruned weight (:mod:`.comm`) that the server aggregates by a weighted vote
(:mod:`.loop`). Baselines: the {0,1} supermask (edge-popup) and dense FedAvg. Real
multi-process deployments run on Flower (:mod:`.flower`, extra ``neuronkit-pruning[flwr]``,
imported lazily: not re-exported here).
"""

from .comm import dense_uplink_bits, pack_signs, payload_bits, sign_uplink_bits, unpack_signs
from .loop import (
    ClientData,
    FederatedHistory,
    LocalConfig,
    aggregate_mask_votes,
    aggregate_sign_votes,
    binary_client_update,
    check_clients,
    fedavg_aggregate,
    fedavg_client_update,
    hidenseek_client_update,
    run_binary_supermask,
    run_fedavg,
    run_hidenseek,
)
from .partition import dirichlet_partition
from .supermask import BinarySupermask, SignSupermask, sign_ste, topk_mask_ste
from .synflow import synflow_prune, synflow_scores

__all__ = [
    "BinarySupermask",
    "ClientData",
    "FederatedHistory",
    "LocalConfig",
    "SignSupermask",
    "aggregate_mask_votes",
    "aggregate_sign_votes",
    "binary_client_update",
    "check_clients",
    "dense_uplink_bits",
    "dirichlet_partition",
    "fedavg_aggregate",
    "fedavg_client_update",
    "hidenseek_client_update",
    "pack_signs",
    "payload_bits",
    "run_binary_supermask",
    "run_fedavg",
    "run_hidenseek",
    "sign_ste",
    "sign_uplink_bits",
    "synflow_prune",
    "synflow_scores",
    "topk_mask_ste",
    "unpack_signs",
]
