"""Benchmarks of the Monte Carlo engine against a competent NumPy baseline timed in the same run.

``strongcollapse bench`` runs them; they are measurements, never timed tests.
"""
