"""The shared vocabulary, the bottom layer: spectra, teachers, the problem spec and input validation.

Everything above (``strongcollapse.simulate``, ``analytic``, analysis, orchestration, experiments)
speaks in these terms; nothing here imports any of them.
"""
