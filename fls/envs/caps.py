"""Per-game episode caps in agent steps, shared by the ``train`` and ``evaluate`` params sections.

A cap counts a whole game's 4-frame skips, hidden ones included (what Baselines' Monitor calls the
episode length), and restarts only with a new game. Keys are the paper's game names; BreakoutInfinite
is a key of its own.
"""

from __future__ import annotations

from typing import Any

from fls.games import GAMES, VARIANTS, get_game


def cap_key(game: str) -> str:
    """Paper spelling of a game or variant name (the keys of a ``*_by_game`` mapping)."""
    for variant in VARIANTS:
        if game.strip().lower() == variant.lower():
            return variant
    return get_game(game).name


def cap_for(game: str, default: int, by_game: dict[str, int]) -> int:
    """The cap that applies to ``game``: its entry in ``by_game``, else ``default``."""
    return int(by_game.get(cap_key(game), default))


def check_caps(caps: Any, section: str, error: type[Exception]) -> dict[str, int]:
    """``<section>.max_episode_steps_by_game`` as {paper game name: positive int}, else a one-line ``error``."""
    where = f"{section}: field 'max_episode_steps_by_game'"
    if caps is None:
        return {}
    if not isinstance(caps, dict):
        raise error(f"{where} must be a mapping of game name to agent steps, e.g. {{Breakout: 30000}}, got {caps!r}")
    out: dict[str, int] = {}
    valid = [*GAMES, *VARIANTS]
    for name, steps in caps.items():
        if not isinstance(name, str) or name not in valid:
            raise error(f"{where}: unknown game {name!r} (valid: {', '.join(valid)})")
        if isinstance(steps, float) and steps.is_integer():
            steps = int(steps)  # YAML reads 3e4 as a float
        if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
            raise error(f"{where}: {name} must be a positive integer number of agent steps, got {steps!r}")
        out[name] = steps
    return out
