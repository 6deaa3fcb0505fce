"""Test plugin for neuronkit-common's registry and CLI."""
