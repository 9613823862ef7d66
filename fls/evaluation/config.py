"""The ``evaluate`` section of params.yaml: the settings of one evaluation run (flags override them).

Its own module: the declarations (defaults, help, bounds) are what the CLI and the params checks read,
apart from the evaluation loop (``fls.evaluation.evaluate``) that runs with them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fls.envs.caps import cap_for, check_caps
from fls.settings import check_fields, setting

VIDEO_FIELDS = ("video_max_steps", "frame_every")  # EvalConfig fields read only by --video / --frames


class EvaluationError(ValueError):
    """Evaluation settings or inputs that cannot give a valid protocol run (message names the field)."""


@dataclass
class EvalConfig:
    """Settings of one evaluation run (params.yaml section ``evaluate``; flags override)."""

    episodes: int = setting(8192, ge=1, help="Whole-game episodes in total (the paper's 2**13).")
    num_envs: int = setting(16, ge=1, help="Parallel envs; each plays exactly episodes / num_envs episodes.")
    seed: int = setting(1000, ge=0, help="Env i is seeded seed + i; the action-sampling generator is seeded with seed.")
    # Per-episode cap in agent steps (4-frame skips, hidden ones included) for games not in
    # max_episode_steps_by_game. The authors' eval: gym's 100,000-step limit (75,000 for SpaceInvaders)
    # and --max-eplen (108,000; 30,000 for Breakout), whichever is smaller (docs/evaluation.md).
    max_episode_steps: int = setting(
        100_000, ge=1, help="Episode cap in agent steps for every game; drops evaluate.max_episode_steps_by_game.",
    )
    max_episode_steps_by_game: dict[str, int] = setting(default_factory=dict, help="Per-game episode caps in agent steps.")
    episodic_life: bool = setting(
        True, help="Zero the frame stack after a lost life (the authors' eval kept Baselines' episode_life=True).",
    )
    device: str = setting("auto", help="torch device; auto: cuda if available, else cpu.")
    deterministic: bool = setting(
        False, flag="--deterministic/--stochastic", help="Argmax actions instead of sampling (the protocol samples).",
    )
    video_max_steps: int = setting(2000, ge=1, help="Video length cap in agent steps (--video / --frames).")
    frame_every: int = setting(10, ge=1, help="--frames saves every k-th step of the video rollout.")
    env_groups: int = setting(
        2, ge=1, help="Env groups: one steps while the net acts for another (1 = no pipelining).",
    )
    env_workers: int = setting(
        0, ge=0,
        help="Worker processes stepping the Python-backend envs (BreakoutInfinite), split over the env groups; "
             "0 = in this process. The six games' C++ envs ignore it; scores are the same for any value.",
    )

    def validate(self) -> None:
        """Field bounds from the declarations, then the checks across fields (one line naming them)."""
        check_fields(self, "evaluate", EvaluationError)
        self.max_episode_steps_by_game = check_caps(self.max_episode_steps_by_game, "evaluate", EvaluationError)
        if self.num_envs % self.groups:
            raise EvaluationError(
                f"evaluate: num_envs ({self.num_envs}) must be divisible by env_groups ({self.env_groups}); "
                f"set env_groups to a divisor (1 = no pipelining)"
            )
        if self.episodes % self.num_envs:
            raise EvaluationError(
                f"evaluate: episodes ({self.episodes}) must be divisible by num_envs ({self.num_envs}) so that "
                f"every env contributes the same number of episodes"
            )

    def max_episode_steps_for(self, game: str) -> int:
        """The cap (agent steps) for ``game``: its entry in ``max_episode_steps_by_game``, else ``max_episode_steps``."""
        return cap_for(game, self.max_episode_steps, self.max_episode_steps_by_game)

    @property
    def groups(self) -> int:
        """Env groups actually used (never more than there are envs)."""
        return min(self.env_groups, self.num_envs)

    @property
    def workers_per_group(self) -> int:
        """Worker processes of each env group's Python backend (at least one each when any are asked for)."""
        return max(1, self.env_workers // self.groups) if self.env_workers else 0

    @property
    def per_env(self) -> int:
        return self.episodes // self.num_envs

    def env_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.num_envs)]

    @classmethod
    def fields_read(cls, filming: bool) -> tuple[str, ...]:
        """The fields an evaluation reads: the video ones (``VIDEO_FIELDS``) only when it also films.

        ``fls evaluate`` takes only these from params.yaml, so ``eval.json`` (which records the config)
        depends on no key the evaluate stages do not track.
        """
        return tuple(f.name for f in dataclasses.fields(cls) if filming or f.name not in VIDEO_FIELDS)
