"""Analysis of results, above theory and simulation: tolerance rule and agreement summaries
(:mod:`.compare`), simulated peak locations (:mod:`.peaks`), log-log slope fits (:mod:`.slopes`).

Plain NumPy on arrays that theory or simulation produced; imports neither of them.
"""
