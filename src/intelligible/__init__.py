"""intelligible: the physics-of-AI methods as fast, tested tools."""

from intelligible.core.errors import IntelligibleError
from intelligible.core.threads import set_env_defaults

# Before torch or numba start their thread pools: counts from the usable CPUs, passive waits.
set_env_defaults()

__version__ = "0.1.0"
__all__ = ["IntelligibleError", "__version__"]
