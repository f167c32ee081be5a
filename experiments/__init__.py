"""The papers' claims as runnable experiments, one sub-package per paper.

Each module defines one :class:`strongcollapse.orchestration.runner.Experiment` (a default config,
``--quick`` overrides and a thin ``run``). They are registered as entry points in the group
``strongcollapse.experiments`` (pyproject.toml), which is how the CLI finds them: nothing below this
package imports it. Shipped in the wheel, so ``strongcollapse run NAME`` works from any directory.
"""
