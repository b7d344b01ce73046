"""intelligible: the physics-of-AI methods as fast, tested tools."""

from intelligible.core.errors import IntelligibleError

__version__ = "0.1.0"
__all__ = ["IntelligibleError", "__version__"]
