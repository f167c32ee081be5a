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

__all__ = ["merge", "apply_sets", "config_hash", "check_like", "check_seed", "SEED_MAX"]

# jax.random.key takes a signed 64-bit seed.
SEED_MAX = 2**63 - 1


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


def _kind(value: Any) -> str:
    """The JSON kind of a config value, with integers apart from other numbers."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a section {...}"
    return "null"


def _fits(default: Any, value: Any) -> bool:
    """Whether ``value`` has the kind of ``default``: an integer where a number is expected and a
    single number where a list of numbers is expected are fine (validation broadcasts them)."""
    want, got = _kind(default), _kind(value)
    if want == got:
        return True
    if want == "a number":
        return got == "an integer"
    if want == "a list" and got in ("a number", "an integer"):
        return all(_kind(item) in ("a number", "an integer") for item in default)
    return False


def check_like(default: Any, value: Any, path: str = "") -> None:
    """Checks a resolved config against its defaults: every value has its default's kind.

    This catches, before anything is computed, the overrides that no experiment could use
    (``--set trials=[2,3]``, ``--set seed=abc``, ``--set 'd=[100,200]'``); the ranges are the
    experiment's own validation's job. Lists of numbers are checked item by item; sections are
    checked key by key where both have the key (a replaced spectrum may have other keys); lists of
    sections only need to hold sections.

    Raises:
        ParameterError: naming the dotted key, the kind expected and the value given.
    """
    where = path or "the config"
    if not _fits(default, value):
        raise ParameterError(f"{where} must be {_kind(default)}, got {json.dumps(value)}")
    if isinstance(default, dict) and isinstance(value, dict):
        for key in default.keys() & value.keys():
            check_like(default[key], value[key], f"{path}.{key}" if path else key)
    elif isinstance(default, list) and isinstance(value, list) and default:
        kinds = {_kind(item) for item in default}
        for i, item in enumerate(value):
            if kinds <= {"a number", "an integer"}:
                if _kind(item) not in ("a number", "an integer"):
                    raise ParameterError(f"{path}.{i} must be a number, got {json.dumps(item)}")
            elif kinds == {"a section {...}"} and not isinstance(item, dict):
                raise ParameterError(f"{path}.{i} must be a section {{...}}, got {json.dumps(item)}")


def check_seed(seed: Any) -> int:
    """A random seed: an integer in [0, 2**63 − 1] (what ``jax.random.key`` accepts)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ParameterError(f"seed must be an integer in [0, 2**63 - 1], got {seed!r}")
    return seed
