"""Experiment configs: plain nested dicts of JSON values, overridable with ``--set key=value``.

``key`` is a dotted path into the config (list items by index: ``panels.1.spectrum.beta``) and
must already exist, so a typo is an error rather than a silently ignored setting. ``value`` is
parsed as JSON (``50``, ``0.1``, ``[0, 0.1]``, ``{"kind": "power_law", "beta": 2}``, ``true``);
anything that is not JSON is taken as a string (``spectrum.path=eigs.npy``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Iterable
from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["merge", "apply_sets", "config_hash"]


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merges ``overrides`` into a copy of ``base`` (dicts merge, other values replace)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_sets(config: dict[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Applies ``key=value`` assignments to a copy of ``config``.

    Raises:
        ValueError: a malformed assignment or a key that is not in the config.
    """
    out = copy.deepcopy(config)
    for assignment in assignments:
        if "=" not in assignment:
            raise ParameterError(f"--set expects key=value, got {assignment!r}")
        path, text = assignment.split("=", 1)
        parts = path.strip().split(".")
        if not all(parts):
            raise ParameterError(
                f"--set key must be a dotted path like trials or panels.0.beta, got {path!r}"
            )
        node: Any = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ParameterError(
                        f"--set key {path!r}: {part!r} is not an index of a list of {len(node)}"
                    )
                index: Any = int(part)
            elif isinstance(node, dict):
                if part not in node:
                    where = ".".join(parts[:depth]) or "the config"
                    raise ParameterError(
                        f"--set key {path!r}: {where} has no {part!r}; known keys {sorted(node)}"
                    )
                index = part
            else:
                raise ParameterError(
                    f"--set key {path!r}: {'.'.join(parts[:depth])} is a value, not a section"
                )
            if last:
                node[index] = _parse_value(text)
            else:
                node = node[index]
    return out


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a config (canonical JSON)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
