"""Atari environments with the SPEC preprocessing (training vector env, single env, BreakoutInfinite)."""

from fls.envs.vector import AtariVecEnv, EnvConfigError, EpisodeStats, VecStep, make_eval_env, make_vector_env

__all__ = ["AtariVecEnv", "EnvConfigError", "EpisodeStats", "VecStep", "make_eval_env", "make_vector_env"]
