"""PPO and training-run settings (OpenAI Baselines PPO2 Atari defaults; docs/training.md, "Settings").

``TrainConfig`` is the ``train`` section of params.yaml, kept flat so every field maps to one YAML key
and one CLI flag. ``PPOConfig`` is the optimisation-only view that the trainer and the losses read.
Every default below is the paper's setting; the docstring of each field says where it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from fls.config import ConfigError
from fls.envs.caps import cap_for, check_caps
from fls.games import UnknownGameError, get_game
from fls.models import ARCHS
from fls.settings import check_fields, redeclare, setting


@dataclass(frozen=True)
class PPOConfig:
    """Baselines ``ppo2.learn`` Atari settings (``baselines/ppo2/defaults.py: atari()``)."""

    num_envs: int = setting(8, ge=1, help="Parallel envs (Baselines: --num_env 8 in the paper's runs).")
    num_steps: int = setting(128, ge=1, help="Steps per env per rollout (nsteps); 8 x 128 = 1024 transitions per update.")
    update_epochs: int = setting(4, ge=1, help="Passes over each rollout (noptepochs).")
    num_minibatches: int = setting(4, ge=1, help="Minibatches per epoch (nminibatches): 1024 / 4 = 256 per minibatch.")
    learning_rate: float = setting(2.5e-4, gt=0, help="Adam lr at the start of training.")
    anneal_lr: bool = setting(True, help="Linear decay of lr to 0 over the planned number of updates (Baselines: lr * frac).")
    adam_eps: float = setting(1e-5, gt=0, help="Adam epsilon (Baselines' tf.train.AdamOptimizer(epsilon=1e-5)).")
    clip_coef: float = setting(0.1, gt=0, help="Clip range for the policy ratio AND the value function; constant (not annealed).")
    clip_vloss: bool = setting(True, help="Clipped value loss: 0.5 * max(unclipped^2, clipped^2) (Baselines always does this).")
    ent_coef: float = setting(0.01, ge=0, help="Entropy bonus coefficient.")
    vf_coef: float = setting(0.5, ge=0, help="Value-loss coefficient.")
    max_grad_norm: float = setting(0.5, gt=0, help="Global gradient-norm clip.")
    gamma: float = setting(0.99, ge=0, le=1, help="Discount.")
    gae_lambda: float = setting(0.95, ge=0, le=1, help="GAE lambda.")
    norm_adv: bool = setting(True, help="Normalise advantages per minibatch (mean 0, std 1, eps 1e-8).")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches


_PPO_FIELDS = tuple(f.name for f in fields(PPOConfig))

# TrainConfig fields that may differ between an interrupted run and its resumption: they change how the
# run is executed, not what it learns. Everything else (total_steps included) must match.
RESUMABLE_CHANGES: tuple[str, ...] = (
    "checkpoint_every", "device", "torch_threads", "env_threads", "progress", "tensorboard", "channels_last",
)
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig:
    """One training run: which agent on which game, how long, and the PPO settings (flat).

    ``total_steps`` counts agent steps (one step = one action of one env = 4 emulator frames); the
    paper's budget is 5e7 (2e8 frames). The run performs ``total_steps // (num_envs * num_steps)``
    updates, like Baselines' ``nupdates = total_timesteps // nbatch``.
    """

    arch: str = setting("nature_cnn", help="Architecture id (see `fls models`).")
    game: str = setting("Breakout", help="Game name, e.g. Breakout (one of the six games, fls.games.GAMES).")
    seed: int = setting(1, help="Seeds torch, numpy, python and the envs (env i gets seed + i); paper seeds 1, 9, 17, 25, 33.")
    total_steps: int = setting(
        50_000_000, cli_type=str, metavar="N", show_default=False,
        help="Agent steps over all envs, e.g. 5e7 (the paper's).",
    )
    # --- PPO: PPOConfig's fields, declared there once (defaults, help, bounds), here flat, in its order ---
    for _name, _field in redeclare(PPOConfig, *_PPO_FIELDS).items():
        __annotations__[_name] = PPOConfig.__annotations__[_name]
        locals()[_name] = _field
    del _name, _field
    # --- environment ---
    noop_max: int = setting(30, ge=0, help="1..noop_max random raw no-op frames at each game start (0 disables; Baselines: 30).")
    # Whole-game cap in agent steps (4-frame skips, hidden ones included), for games without an entry in
    # max_episode_steps_by_game. gym's NoFrameskip-v4 limit of 100,000 x frameskip raw frames is 100,000
    # steps; SpaceInvaders (registered frameskip 3) has 300,000 frames = 75,000 steps.
    max_episode_steps: int = setting(
        100_000, ge=1, help="Whole-game cap in agent steps for this game; drops train.max_episode_steps_by_game.",
    )
    max_episode_steps_by_game: dict[str, int] = setting(
        default_factory=lambda: {"SpaceInvaders": 75_000}, help="Per-game whole-game caps in agent steps.",
    )
    # --- run mechanics (do not change the learning; may differ when resuming) ---
    checkpoint_every: int = setting(100, ge=1, help="Checkpoint every N updates (and always at the end).")
    device: str = setting("auto", help="torch device; auto: cuda if available, else cpu.")
    torch_threads: int = setting(
        2, ge=0, help="CPU threads (parallel shards of each minibatch and rollout batch; 0 = one per CPU); GPU: torch threads.",
    )
    env_threads: int = setting(0, ge=0, help="Native threads of the C++ vector env (0 = one per env, capped by ALE).")
    deterministic: bool = setting(True, help="torch.use_deterministic_algorithms (CPU runs repeat bit for bit).")
    progress: bool = setting(True, help="Show a progress bar.")
    tensorboard: bool = setting(False, help="Also write TensorBoard events to OUT/tensorboard/ (dvclive files are always written).")
    # --- accelerator efficiency (docs/scale_out.md) ---
    precision: str = setting(
        "fp32", choices=PRECISIONS,
        help="bf16: bf16 autocast of the network forward (rollout and update); fp32 until shown equal in learning.",
    )
    channels_last: str = setting(
        "auto", choices=("auto", "on", "off"), help="Network memory layout: auto (channels-last on CPU only), on, off.",
    )

    @classmethod
    def field_defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in fields(cls)}

    @property
    def ppo(self) -> PPOConfig:
        return PPOConfig(**{name: getattr(self, name) for name in _PPO_FIELDS})

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.batch_size

    @property
    def planned_steps(self) -> int:
        """Agent steps the run actually performs (total_steps rounded down to whole rollouts)."""
        return self.num_updates * self.batch_size

    def validate(self) -> None:
        """Reject settings that cannot run, with one line naming the field and what was expected.

        The bounds of single fields come from their declarations (``check_fields``); the checks below
        involve the game and architecture registries or several fields.
        """
        try:
            self.game = get_game(self.game).name  # canonical spelling ("breakout" -> "Breakout")
        except UnknownGameError as exc:
            raise ConfigError(f"train: field 'game': {exc}") from None
        if self.arch not in ARCHS:
            raise ConfigError(f"train: field 'arch': unknown architecture '{self.arch}' (valid: {', '.join(ARCHS)})")
        check_fields(self, "train")  # bounds and choices, from the declarations above
        self.max_episode_steps_by_game = check_caps(self.max_episode_steps_by_game, "train", ConfigError)
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"train: batch num_envs*num_steps = {self.batch_size} is not divisible by "
                f"num_minibatches = {self.num_minibatches}"
            )
        if self.total_steps < self.batch_size:
            raise ConfigError(
                f"train: field 'total_steps' = {self.total_steps} is less than one rollout "
                f"(num_envs*num_steps = {self.batch_size})"
            )
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError("train: field 'device' must be 'auto' or a torch device string such as 'cpu' or 'cuda'")

    @property
    def episode_cap(self) -> int:
        """The whole-game cap in agent steps for this run's game."""
        return cap_for(self.game, self.max_episode_steps, self.max_episode_steps_by_game)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON view (what run_info.json and checkpoints record)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def learning_fields(self) -> dict[str, Any]:
        """The settings that define the learning run; a resumed run must match them exactly."""
        return {k: v for k, v in self.to_dict().items() if k not in RESUMABLE_CHANGES}
