"""Strong Model Collapse (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025): Models A and B.

Each module defines one ``EXPERIMENT`` registered under ``[project.entry-points."strongcollapse.experiments"]``.
"""

PAPER = "Dohmatob, Feng, Subramonian, Kempe. Strong Model Collapse. ICLR 2025, arXiv:2410.04840"
