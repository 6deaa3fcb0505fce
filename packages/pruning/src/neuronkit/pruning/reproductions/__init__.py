"""Reproductions of neuronkit-pruning (one module per id)."""
