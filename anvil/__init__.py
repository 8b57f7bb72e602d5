"""anvil: a command-line coding agent that routes each stage to the cheapest good-enough model."""

__version__ = "0.1.0"
