"""Reproductions of neuronkit-theory (registered under ``neuronkit.reproductions``)."""
