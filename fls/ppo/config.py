"""PPO and training-run settings (OpenAI Baselines PPO2 Atari defaults; docs/training.md, "Settings").

``TrainConfig`` is the ``train`` section of params.yaml, kept flat so every field maps to one YAML key
and one CLI flag. ``PPOConfig`` is the optimisation-only view that the trainer and the losses read.
Every default below is the paper's setting; the docstring of each field says where it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from fls.config import ConfigError


@dataclass(frozen=True)
class PPOConfig:
    """Baselines ``ppo2.learn`` Atari settings (``baselines/ppo2/defaults.py: atari()``)."""

    num_envs: int = 8  # parallel envs (Baselines: --num_env 8 in the paper's runs)
    num_steps: int = 128  # steps per env per rollout (nsteps); 8 x 128 = 1024 transitions per update
    update_epochs: int = 4  # passes over each rollout (noptepochs)
    num_minibatches: int = 4  # minibatches per epoch (nminibatches): 1024 / 4 = 256 per minibatch
    learning_rate: float = 2.5e-4  # Adam lr at the start of training
    anneal_lr: bool = True  # linear decay of lr to 0 over the planned number of updates (Baselines: lr * frac)
    adam_eps: float = 1e-5  # Adam epsilon (Baselines' tf.train.AdamOptimizer(epsilon=1e-5))
    clip_coef: float = 0.1  # clip range for the policy ratio AND the value function; constant (not annealed)
    clip_vloss: bool = True  # clipped value loss: 0.5 * max(unclipped^2, clipped^2) (Baselines always does this)
    ent_coef: float = 0.01  # entropy bonus coefficient
    vf_coef: float = 0.5  # value-loss coefficient
    max_grad_norm: float = 0.5  # global gradient-norm clip
    gamma: float = 0.99  # discount
    gae_lambda: float = 0.95  # GAE lambda
    norm_adv: bool = True  # normalise advantages per minibatch (mean 0, std 1, eps 1e-8)

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

    arch: str = "nature_cnn"  # architecture id (fls.models.ARCHS)
    game: str = "Breakout"  # one of the six games (fls.games.GAMES)
    seed: int = 1  # seeds torch, numpy, python and the envs (env i gets seed + i); paper seeds 1, 9, 17, 25, 33
    total_steps: int = 50_000_000  # agent steps over all envs
    # --- PPO (see PPOConfig) ---
    num_envs: int = 8
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 2.5e-4
    anneal_lr: bool = True
    adam_eps: float = 1e-5
    clip_coef: float = 0.1
    clip_vloss: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    norm_adv: bool = True
    # --- environment ---
    noop_max: int = 30  # 1..noop_max random raw no-op frames at each game start (0 disables; Baselines: 30)
    # Whole-game cap in agent steps (4-frame skips, hidden ones included), for games without an entry in
    # max_episode_steps_by_game. gym's NoFrameskip-v4 limit of 100,000 x frameskip raw frames is 100,000
    # steps; SpaceInvaders (registered frameskip 3) has 300,000 frames = 75,000 steps.
    max_episode_steps: int = 100_000
    max_episode_steps_by_game: dict[str, int] = field(default_factory=lambda: {"SpaceInvaders": 75_000})
    # --- run mechanics (do not change the learning; may differ when resuming) ---
    checkpoint_every: int = 100  # write checkpoint.pt every this many updates (and always at the end)
    device: str = "auto"  # "auto" = cuda if available else cpu; or any torch device string
    torch_threads: int = 2  # CPU: parallel shards (threads) of each minibatch and rollout batch (0 = one per CPU); GPU: torch threads
    env_threads: int = 0  # native threads of the C++ vector env (0 = one per env, capped by ALE)
    deterministic: bool = True  # torch.use_deterministic_algorithms (CPU runs repeat bit for bit)
    progress: bool = True  # tqdm progress bar
    tensorboard: bool = False  # also write RUN/tensorboard/ event files (dvclive files are always written)
    # --- accelerator efficiency (docs/scale_out.md) ---
    precision: str = "fp32"  # "bf16": bf16 autocast of the network forward (rollout and update); fp32 until shown equal in learning
    channels_last: str = "auto"  # network memory layout: "auto" (channels-last on CPU only), "on", "off"

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
        """Reject settings that cannot run, with one line naming the field and what was expected."""
        from fls.games import UnknownGameError, get_game

        try:
            self.game = get_game(self.game).name  # canonical spelling ("breakout" -> "Breakout")
        except UnknownGameError as exc:
            raise ConfigError(f"train: field 'game': {exc}") from None
        try:
            from fls.models import ARCHS
        except ImportError:  # models package not importable: cannot check here, build_model will
            ARCHS = None
        if ARCHS is not None and self.arch not in ARCHS:
            raise ConfigError(f"train: field 'arch': unknown architecture '{self.arch}' (valid: {', '.join(ARCHS)})")
        positive = ("num_envs", "num_steps", "update_epochs", "num_minibatches", "checkpoint_every", "max_episode_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train: field '{name}' must be >= 1, got {getattr(self, name)}")
        from fls.envs.caps import check_caps

        self.max_episode_steps_by_game = check_caps(self.max_episode_steps_by_game, "train", ConfigError)
        for name in ("torch_threads", "env_threads", "noop_max"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train: field '{name}' must be >= 0, got {getattr(self, name)}")
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
        if not self.learning_rate > 0:
            raise ConfigError(f"train: field 'learning_rate' must be > 0, got {self.learning_rate}")
        if not self.adam_eps > 0:
            raise ConfigError(f"train: field 'adam_eps' must be > 0, got {self.adam_eps}")
        if not self.clip_coef > 0:
            raise ConfigError(f"train: field 'clip_coef' must be > 0, got {self.clip_coef}")
        if not self.max_grad_norm > 0:
            raise ConfigError(f"train: field 'max_grad_norm' must be > 0, got {self.max_grad_norm}")
        for name in ("gamma", "gae_lambda"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"train: field '{name}' must be in [0, 1], got {v}")
        for name in ("ent_coef", "vf_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train: field '{name}' must be >= 0, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train: field 'precision' must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.channels_last not in ("auto", "on", "off"):
            raise ConfigError(f"train: field 'channels_last' must be auto, on or off, got {self.channels_last!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError("train: field 'device' must be 'auto' or a torch device string such as 'cpu' or 'cuda'")

    @property
    def episode_cap(self) -> int:
        """The whole-game cap in agent steps for this run's game."""
        from fls.envs.caps import cap_for

        return cap_for(self.game, self.max_episode_steps, self.max_episode_steps_by_game)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON view (what run_info.json and checkpoints record)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def learning_fields(self) -> dict[str, Any]:
        """The settings that define the learning run; a resumed run must match them exactly."""
        return {k: v for k, v in self.to_dict().items() if k not in RESUMABLE_CHANGES}
