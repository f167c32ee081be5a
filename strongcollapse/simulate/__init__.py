"""JAX Monte Carlo of model collapse (float64, exact population risk, deterministic keys).

Never imports :mod:`analytic`: simulation and theory meet only in :mod:`strongcollapse.compare`.
"""

from strongcollapse.simulate.model_a import SimulationResult, linear

__all__ = ["SimulationResult", "linear"]
