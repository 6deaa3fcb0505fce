"""Boosting-based training of neural networks.

:mod:`~neuronkit.pruning.boosting.gbnn`: Gradient Boosted Neural Networks (Emami &
Martínez-Muñoz, IEEE Access 2023), a one-hidden-layer network trained unit-block by unit-block
with gradient boosting, whose last-trained units can be switched off at test time.
"""

from .gbnn import GBNNClassifier, GBNNRegressor, fit_hidden_block

__all__ = ["GBNNClassifier", "GBNNRegressor", "fit_hidden_block"]
