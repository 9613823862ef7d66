"""PPO (Baselines PPO2 Atari defaults): settings, GAE and losses, and the training loop."""

from fls.ppo.config import PPOConfig, TrainConfig
from fls.ppo.losses import compute_gae, ppo_losses

__all__ = ["PPOConfig", "TrainConfig", "compute_gae", "ppo_losses"]
