"""distillwarden: keep an LLM API from quietly training or evaluating a rival model."""

__version__ = "0.1.0"
__all__ = ["__version__"]
