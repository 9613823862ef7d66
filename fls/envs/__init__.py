"""Atari environments with the SPEC preprocessing (training vector env, single env, BreakoutInfinite)."""
