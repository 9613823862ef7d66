"""Atari environments with the paper's preprocessing (training vector env, single env, BreakoutInfinite).

Semantics and preprocessing: docs/environments.md.

Names are loaded on first use: ``import fls`` imports ``fls.envs.registration`` and should stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AtariVecEnv": "fls.envs.vector",
    "EnvConfigError": "fls.envs.types",
    "EpisodeStats": "fls.envs.types",
    "VecStep": "fls.envs.types",
    "make_vector_env": "fls.envs.vector",
    "make_eval_env": "fls.envs.vector",
    "AtariSingleEnv": "fls.envs.single",
    "make_single_env": "fls.envs.single",
    "make_breakout_infinite": "fls.envs.breakout_infinite",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fls.envs' has no attribute {name!r}")
