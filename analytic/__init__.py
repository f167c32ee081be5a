"""Closed-form theory of model collapse: deterministic equivalents, fixed points, limits.

Pure jax.numpy: no randomness, no keys, no plotting. Never imports strongcollapse.simulate, so
agreement between theory and simulation is evidence, not a tautology (DESIGN.md §1).
"""
