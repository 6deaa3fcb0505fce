"""Reproductions of the papers implemented in neuronkit.snn (one module per id)."""
