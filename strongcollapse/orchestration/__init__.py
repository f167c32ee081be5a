"""Orchestration, the layer under the experiments: configs, the runner and its resume store, run
outputs, figures, the experiment registry (entry points), the report page and the command line.

It never imports :mod:`experiments`: experiments are found through the entry-point group
``strongcollapse.experiments`` (see :mod:`.registry`).
"""
