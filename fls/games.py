"""The six games of the paper and the names each tool knows them by (gym id, ALE ROM, Atari-HEAD zip)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Game:
    name: str  # the paper's name, used in params, paths and tables: "Breakout"
    rom: str  # ale-py ROM id: "breakout"
    num_actions: int  # size of the minimal action set
    atari_head: str | None  # Atari-HEAD zip stem ("breakout"); None where the dataset has no such game

    @property
    def gym_id(self) -> str:
        """NoFrameskip-v4 semantics: frameskip 1, no sticky actions, minimal action set."""
        return f"{self.name}NoFrameskip-v4"


GAMES: dict[str, Game] = {
    g.name: g
    for g in (
        Game("BeamRider", "beam_rider", 9, None),
        Game("Breakout", "breakout", 4, "breakout"),
        Game("Enduro", "enduro", 9, "enduro"),
        Game("MsPacman", "ms_pacman", 9, "ms_pacman"),
        Game("Seaquest", "seaquest", 18, "seaquest"),
        Game("SpaceInvaders", "space_invaders", 6, "space_invaders"),
    )
}

# Evaluation-only variants that play a base game's ROM with a patch (see fls.envs.breakout_infinite).
VARIANTS: dict[str, str] = {"BreakoutInfinite": "Breakout"}


class UnknownGameError(ValueError):
    pass


def get_game(name: str) -> Game:
    """Look a game up by paper name, ROM id or Atari-HEAD name (case-insensitive)."""
    key = name.strip().lower().replace("-", "_")
    for g in GAMES.values():
        if key in (g.name.lower(), g.rom, (g.atari_head or "").lower(), g.rom.replace("_", "")):
            return g
    valid = ", ".join(GAMES)
    raise UnknownGameError(f"unknown game '{name}' (valid: {valid})")


def base_game(name: str) -> Game:
    """The game whose ROM and action set a (possibly patched) game name uses."""
    for variant, base in VARIANTS.items():
        if name.strip().lower() == variant.lower():
            return GAMES[base]
    try:
        return get_game(name)
    except UnknownGameError:
        valid = ", ".join([*GAMES, *VARIANTS])
        raise UnknownGameError(f"unknown game '{name}' (valid: {valid})") from None
