"""The PPO update: shuffled minibatch passes over a rollout, each minibatch's gradient cut into shards.

Why shards: on a small CPU, computing a minibatch's gradient as several contiguous pieces in parallel
Python threads (one torch thread each) and summing them in a fixed order beats torch's intra-op
threading, whose per-op barriers stall whenever another process holds a core (docs/training.md).
The rollout's action sampling and the bf16 autocast switch live here too: the loop and the update share them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch.distributions import Categorical

from fls.ppo.config import PPOConfig
from fls.ppo.losses import ADV_EPS, explained_variance, ppo_losses


def autocast_for(precision: str, device: torch.device) -> Callable[[], Any]:
    """A context factory: bf16 autocast of the network's forward for ``precision == "bf16"``, else a no-op.

    Losses, the optimizer and the stored rollout stay fp32 (outputs are cast back).
    """
    if precision == "fp32":
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def sample_actions(dist: Categorical, generator: torch.Generator | None = None) -> torch.Tensor:
    """``dist.sample()`` drawing from ``generator`` (None: the global one; then it is ``dist.sample()`` exactly)."""
    return torch.multinomial(dist.probs, 1, True, generator=generator).squeeze(1)


def ppo_update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    ppo: PPOConfig,
    obs: torch.Tensor,
    actions: torch.Tensor,
    logp: torch.Tensor,
    adv: torch.Tensor,
    returns: torch.Tensor,
    values: torch.Tensor,
    valid: torch.Tensor,
    *,
    channels_last: bool = False,
    pool: ThreadPoolExecutor | None = None,
    shards: int = 1,
    generator: torch.Generator | None = None,
    autocast: Callable[[], Any] | None = None,
) -> dict[str, float]:
    """One PPO update on a rollout ((T, N, ...) tensors): ``update_epochs`` shuffled passes of minibatches.

    With ``shards > 1`` each minibatch is cut into that many contiguous pieces whose gradients are
    computed in parallel by ``pool`` (one torch thread each) and summed in a fixed order. The loss is
    the same minibatch mean (advantages are normalised over the whole minibatch first; each shard's
    mean terms are weighted by its share of the samples), so only float rounding differs from
    ``shards=1``. On a small CPU this beats torch's intra-op threading, whose per-op barriers stall
    whenever another process holds a core.

    ``generator`` (a CPU generator; None: the global one) draws the minibatch shuffles.

    Returns the minibatch-mean losses (Baselines logs the same means) and the explained variance.
    """
    b_obs = obs.reshape((-1, *obs.shape[2:]))
    b_act, b_logp, b_adv = actions.reshape(-1), logp.reshape(-1), adv.reshape(-1)
    b_ret, b_val, b_valid = returns.reshape(-1), values.reshape(-1), valid.reshape(-1)
    batch, mb = ppo.batch_size, ppo.minibatch_size
    params = [p for p in model.parameters() if p.requires_grad]
    shards = max(1, min(shards, mb))
    if shards > 1 and pool is None:
        raise ValueError("ppo_update: shards > 1 needs a thread pool")
    # Host syncs: the shuffles and the validity mask are read on the host (the mask once per update), and
    # the logged statistics stay on the device until the update ends, so on a GPU nothing in the minibatch
    # loop waits for the device. On the CPU these are the same values and the same float operations.
    device = b_obs.device
    b_valid_host = b_valid.cpu()
    shard_rows = torch.tensor_split(torch.arange(mb), shards)
    shard_rows_dev = [rows.to(device) for rows in shard_rows]
    totals = torch.zeros(len(_STAT_KEYS), dtype=torch.float64, device=device)
    count = 0
    for _epoch in range(ppo.update_epochs):
        perm_host = torch.randperm(batch, generator=generator)  # CPU generator: same shuffles on any device
        perm = perm_host.to(device)
        for start in range(0, batch, mb):
            idx = perm[start:start + mb]
            m_valid_host = b_valid_host[perm_host[start:start + mb]]
            all_valid = bool(m_valid_host.all())
            m_valid = b_valid[idx]
            m_adv = b_adv[idx]
            if ppo.norm_adv:
                sel = m_adv if all_valid else m_adv[m_valid]
                if sel.numel() > 0:
                    m_adv = (m_adv - sel.mean()) / (sel.std(unbiased=False) + ADV_EPS)
            n_valid = int(m_valid_host.sum())
            jobs = []
            for rows, part in zip(shard_rows, shard_rows_dev):
                args = (model, params, ppo, b_obs[idx[part]], b_act[idx[part]], b_logp[idx[part]], m_adv[part],
                        b_val[idx[part]], b_ret[idx[part]], m_valid[part], int(m_valid_host[rows].sum()), n_valid, mb,
                        channels_last, autocast or contextlib.nullcontext)
                jobs.append(pool.submit(_shard_grads, *args) if shards > 1 else args)
            results = [j.result() if shards > 1 else _shard_grads(*j) for j in jobs]
            optimizer.zero_grad(set_to_none=True)
            for p_i, p in enumerate(params):
                g = results[0][0][p_i]
                for r in results[1:]:
                    g = g + r[0][p_i]
                p.grad = g
            torch.nn.utils.clip_grad_norm_(params, ppo.max_grad_norm)
            optimizer.step()
            totals += sum(r[1] for r in results)
            count += 1
    row = {f"losses/{k}": v / count for k, v in zip(_STAT_KEYS, totals.tolist())}
    row["losses/explained_variance"] = explained_variance(b_val, b_ret)
    return row


_STAT_KEYS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")


def _shard_grads(model, params, ppo: PPOConfig, obs, act, old_logp, adv, old_v, ret, valid, shard_valid: int,
                 n_valid: int, n_all: int, channels_last: bool, autocast: Callable[[], Any] = contextlib.nullcontext
                 ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Gradients of this shard's share of the minibatch loss, and its share of the logged statistics.

    ``shard_valid`` / ``n_valid`` count the valid samples of the shard / minibatch (host integers, so that
    the weights need no device sync); the statistics come back as a float64 tensor on the device.
    """
    with autocast():
        out = model(obs.contiguous(memory_format=torch.channels_last) if channels_last else obs)
    logits, value = out.logits.float(), out.value.float()
    dist = Categorical(logits=logits, validate_args=False)
    res = ppo_losses(dist.log_prob(act), old_logp, adv, value, old_v, ret, dist.entropy(), ppo.clip_coef,
                     ppo.vf_coef, ppo.ent_coef, norm_adv=False, clip_vloss=ppo.clip_vloss, mask=valid)
    w_valid = shard_valid / n_valid if n_valid else 0.0
    w_all = obs.shape[0] / n_all
    loss = w_valid * (res.policy_loss - ppo.ent_coef * res.entropy) + w_all * ppo.vf_coef * res.value_loss
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = tuple(torch.zeros_like(p) if g is None else g for p, g in zip(params, grads))
    terms = ((w_valid, res.policy_loss), (w_all, res.value_loss), (w_valid, res.entropy), (w_valid, res.approx_kl),
             (w_valid, res.clipfrac))
    stats = torch.stack([v.detach().double() * w for w, v in terms])
    return grads, stats
