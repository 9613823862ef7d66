"""Atari-HEAD (Zenodo records 2603190 = "v2", the paper's, and 3451402 = "v4"): download, parse, preprocess.

The human gaze recordings are the ground truth the saliency metrics score against, so they must be
replayed through exactly the agents' preprocessing. Submodules: ``download`` (Zenodo, resumable, md5
checked), ``parse`` (trials straight out of the game zips), ``preprocess`` (network inputs + fixation
unions per input under both gaze alignments, one NPZ per trial), ``flat`` (the v2 record's flat layout and
its meta_data.csv), ``dataset`` (reader for that format), ``sample`` (a small
synthetic dataset in the real on-disk layout), ``zenodo_server`` (a local stand-in for the Zenodo API).
"""

from __future__ import annotations

from dataclasses import dataclass

from fls.config import ConfigError
from fls.games import get_game
from fls.settings import check_fields, setting

RECORD_ID = "3451402"  # version 4; the paper's Table 4 used the early release 2603190 (profiles/paper.yaml)
PAPER_RECORD_ID = "2603190"
API_URL = "https://zenodo.org/api"
RECORD_PAGE = f"https://zenodo.org/records/{RECORD_ID}"

# Atari-HEAD zip stems of the five games the paper scores (there is no BeamRider in Atari-HEAD).
HEAD_GAMES: tuple[str, ...] = ("breakout", "enduro", "ms_pacman", "seaquest", "space_invaders")

NUM_FULL_ACTIONS = 18  # the label files use ALE's full action enum


class AtariHeadError(ValueError):
    """Bad or unexpected Atari-HEAD data; the message names the file/trial (and line) at fault."""


def head_game(name: str) -> str:
    """Atari-HEAD zip stem for a game given by any of its names ("Breakout", "breakout", "ms_pacman")."""
    game = get_game(name)
    if game.atari_head is None:
        raise AtariHeadError(f"game '{name}' is not in Atari-HEAD (available: {', '.join(HEAD_GAMES)})")
    return game.atari_head


def paper_game(head_name: str) -> str:
    """The paper's game name ("MsPacman") for an Atari-HEAD zip stem ("ms_pacman")."""
    return get_game(head_name).name


def parse_games(games: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Atari-HEAD stems from a comma list or sequence; ``None``/"all" means the five games."""
    if games is None:
        return list(HEAD_GAMES)
    items = [g.strip() for g in games.split(",")] if isinstance(games, str) else [str(g).strip() for g in games]
    items = [g for g in items if g]
    if not items or items == ["all"]:
        return list(HEAD_GAMES)
    out: list[str] = []
    for g in items:
        h = head_game(g)
        if h not in out:
            out.append(h)
    return out


@dataclass
class AtariHeadConfig:
    """The ``atari_head`` section of params.yaml (download and preprocess settings)."""

    games: list[str] = setting(
        default_factory=lambda: list(HEAD_GAMES),
        help="Comma list of games (Atari-HEAD names; all: the five).",
    )
    api_url: str = setting(API_URL, help="Zenodo API base URL.")
    record_id: str = setting(RECORD_ID, help="Zenodo record id of the Atari-HEAD release.")
    retries: int = setting(5, ge=0, help="Retries per file.")
    backoff: float = setting(2.0, ge=0, help="Seconds before the first retry; doubled after each failed attempt.")
    timeout: float = setting(60.0, gt=0, help="Seconds per socket operation.")
    skip_bad_trials: bool = setting(False, help="List unreadable trials in index.csv instead of failing.")
    workers: int = setting(1, ge=1, help="Preprocessing processes.")
    sample_seed: int = setting(0, flag="--seed", help="Seed of the synthetic sample.")
    release: str = setting(
        "auto", choices=("auto", "v2", "v4"), help="auto | v2 (flat, record 2603190) | v4 (per-game zips, record 3451402).",
    )
    alignment: str = setting(
        "aligned", choices=("authors", "aligned"),
        help="Gaze of each input, read by `fls score`: authors (their off-by-one) | aligned.",
    )

    def validate(self) -> None:
        check_fields(self, "atari_head")  # bounds and choices, from the declarations above
        try:
            self.games = parse_games(self.games)
        except ValueError as exc:
            raise ConfigError(f"atari_head: field 'games': {exc}") from None
