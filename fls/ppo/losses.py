"""GAE and the clipped PPO objective, written to match OpenAI Baselines PPO2 term by term.

Kept free of the trainer so the numbers can be checked against hand-worked examples
(tests/test_ppo_losses.py).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

ADV_EPS = 1e-8  # Baselines: (adv - mean) / (std + 1e-8)


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    last_done: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns for a rollout of shape ``(T, N)``.

    Done convention (Baselines ``ppo2/runner.py`` and CleanRL): ``dones[t]`` is 1 when the observation
    the agent acted on at step ``t`` is the first of a new learning episode, i.e. the step *before*
    ``t`` ended an episode. So whether step ``t``'s episode ends after it is ``dones[t + 1]``, and for
    the last step it is ``last_done`` (the done flag that came with the observation after the rollout).
    ``last_value`` is the critic's value of that observation, used to bootstrap unfinished episodes.

    Returns ``(advantages, returns)`` with ``returns = advantages + values`` (the value targets).
    """
    if rewards.shape != values.shape or rewards.shape != dones.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)}, values {tuple(values.shape)} and dones {tuple(dones.shape)} must match")
    num_steps = rewards.shape[0]
    rewards = rewards.float()
    values = values.float()
    dones = dones.float()
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            next_nonterminal = 1.0 - last_done.float()
            next_value = last_value.float()
        else:
            next_nonterminal = 1.0 - dones[t + 1]
            next_value = values[t + 1]
        delta = rewards[t] + gamma * next_value * next_nonterminal - values[t]
        lastgaelam = delta + gamma * lam * next_nonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values


class PPOLoss(NamedTuple):
    loss: torch.Tensor  # what is minimised: policy_loss - ent_coef * entropy + vf_coef * value_loss
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    approx_kl: torch.Tensor  # Baselines' 0.5 * mean((logp_new - logp_old)^2); diagnostic only
    clipfrac: torch.Tensor  # fraction of samples with |ratio - 1| > clip; diagnostic only


def normalize_advantages(adv: torch.Tensor) -> torch.Tensor:
    """Per-minibatch standardisation with the population std, as numpy's ``std`` in Baselines."""
    return (adv - adv.mean()) / (adv.std(unbiased=False) + ADV_EPS)


def ppo_losses(
    new_logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    new_v: torch.Tensor,
    old_v: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    clip: float,
    vf_coef: float,
    ent_coef: float,
    *,
    norm_adv: bool = True,
    clip_vloss: bool = True,
    mask: torch.Tensor | None = None,
) -> PPOLoss:
    """Baselines PPO2 loss on one minibatch (all inputs 1-D over the minibatch; ``entropy`` per sample).

    Policy: mean of max(-A * r, -A * clip(r, 1 - c, 1 + c)). Value: 0.5 * mean of
    max((v - R)^2, (v_old + clip(v - v_old, -c, c) - R)^2), the same ``c`` as the policy
    (``clip_vloss=False`` gives the plain 0.5 * mean((v - R)^2)).

    ``mask`` (bool, optional) marks the samples whose action the agent really took. The others (the FIRE
    forced after a lost life, see ``fls.envs.vector``) are left out of every policy term (advantage
    normalisation, policy loss, entropy, approx_kl, clipfrac) but still train the value function:
    their state and reward are real, only the action was not the policy's.
    """
    if mask is not None and not bool(mask.all()):
        keep = mask.bool()
        new_logp, old_logp, adv, entropy = new_logp[keep], old_logp[keep], adv[keep], entropy[keep]
    if norm_adv and adv.numel() > 0:
        adv = normalize_advantages(adv)
    logratio = new_logp - old_logp
    ratio = logratio.exp()
    pg_losses1 = -adv * ratio
    pg_losses2 = -adv * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    policy_loss = _mean0(torch.max(pg_losses1, pg_losses2))

    v_loss_unclipped = (new_v - returns) ** 2
    if clip_vloss:
        v_clipped = old_v + torch.clamp(new_v - old_v, -clip, clip)
        v_loss_clipped = (v_clipped - returns) ** 2
        value_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
    else:
        value_loss = 0.5 * v_loss_unclipped.mean()

    entropy_mean = _mean0(entropy)
    loss = policy_loss - ent_coef * entropy_mean + vf_coef * value_loss
    with torch.no_grad():
        approx_kl = 0.5 * _mean0(logratio**2)
        clipfrac = _mean0(((ratio - 1.0).abs() > clip).float())
    return PPOLoss(loss, policy_loss, value_loss, entropy_mean, approx_kl, clipfrac)


def _mean0(x: torch.Tensor) -> torch.Tensor:
    """Mean that is 0 (still differentiable) for an empty selection, e.g. a minibatch of forced steps only."""
    return x.mean() if x.numel() else x.sum()


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var[target - pred] / Var[target] (Baselines ``explained_variance``); NaN when Var[target] is 0."""
    var_y = torch.var(target, unbiased=False)
    if var_y.item() == 0:
        return float("nan")
    return float(1.0 - torch.var(target - pred, unbiased=False) / var_y)
