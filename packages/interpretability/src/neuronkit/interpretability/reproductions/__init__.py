"""Registered reproductions of neuronkit-interpretability (one module per id)."""
