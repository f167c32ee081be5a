"""JAX Monte Carlo of model collapse (float64, exact population risk, deterministic keys).

Never imports :mod:`analytic`: simulation and theory meet only in :mod:`strongcollapse.analysis.compare`.
"""

from strongcollapse.simulate.model_a import linear
from strongcollapse.simulate.model_b import random_projection
from strongcollapse.simulate.random_features import random_features
from strongcollapse.simulate.sweep import SimulationResult

__all__ = ["SimulationResult", "linear", "random_features", "random_projection"]
