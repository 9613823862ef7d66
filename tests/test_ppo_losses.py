"""GAE and the clipped PPO loss against numbers worked out by hand / by a plain-Python loop."""

from __future__ import annotations

import math

import pytest
import torch

from fls.ppo.losses import compute_gae, explained_variance, normalize_advantages, ppo_losses


def _gae_reference(rewards, values, ends_after, last_value, gamma, lam):
    """Textbook GAE for one env, written independently: ends_after[t] = episode ends after step t."""
    T = len(rewards)
    adv = [0.0] * T
    running = 0.0
    for t in range(T - 1, -1, -1):
        nv = last_value if t == T - 1 else values[t + 1]
        mask = 0.0 if ends_after[t] else 1.0
        delta = rewards[t] + gamma * nv * mask - values[t]
        running = delta + gamma * lam * mask * running
        adv[t] = running
    return adv


def test_gae_two_steps_by_hand():
    # T=2, one env, no episode end; gamma=0.5, lam=0.5.
    # delta1 = r1 + g*V_last - V1 = 1 + 0.5*4 - 2 = 1;  A1 = 1
    # delta0 = r0 + g*V1 - V0 = 0 + 0.5*2 - 1 = 0;      A0 = 0 + 0.25*1 = 0.25
    rewards = torch.tensor([[0.0], [1.0]])
    values = torch.tensor([[1.0], [2.0]])
    dones = torch.zeros(2, 1)
    adv, ret = compute_gae(rewards, values, dones, torch.tensor([4.0]), torch.tensor([0.0]), 0.5, 0.5)
    assert adv[:, 0].tolist() == pytest.approx([0.25, 1.0])
    assert ret[:, 0].tolist() == pytest.approx([1.25, 3.0])


def test_gae_episode_boundary_cuts_bootstrap():
    # dones[1] = 1: the obs at step 1 starts a new episode, so step 0 must not bootstrap from V1.
    # A0 = r0 - V0 = 1 - 3 = -2. Step 1: last_done = 1 -> A1 = r1 - V1 = 2 - 5 = -3.
    rewards = torch.tensor([[1.0], [2.0]])
    values = torch.tensor([[3.0], [5.0]])
    dones = torch.tensor([[0.0], [1.0]])
    adv, _ = compute_gae(rewards, values, dones, torch.tensor([100.0]), torch.tensor([1.0]), 0.9, 0.8)
    assert adv[:, 0].tolist() == pytest.approx([-2.0, -3.0])


def test_gae_matches_plain_loop_on_random_rollout():
    g = torch.Generator().manual_seed(0)
    T, N, gamma, lam = 13, 3, 0.99, 0.95
    rewards = torch.randint(-1, 2, (T, N), generator=g).float()
    values = torch.randn(T, N, generator=g)
    dones = (torch.rand(T, N, generator=g) < 0.2).float()
    last_value = torch.randn(N, generator=g)
    last_done = torch.tensor([1.0, 0.0, 0.0])
    adv, ret = compute_gae(rewards, values, dones, last_value, last_done, gamma, lam)
    for n in range(N):
        ends_after = [bool(dones[t + 1, n]) for t in range(T - 1)] + [bool(last_done[n])]
        ref = _gae_reference(rewards[:, n].tolist(), values[:, n].tolist(), ends_after, float(last_value[n]), gamma, lam)
        assert adv[:, n].tolist() == pytest.approx(ref, rel=1e-5, abs=1e-5)
    assert torch.allclose(ret, adv + values)


def test_normalize_advantages_population_std():
    a = torch.tensor([1.0, 3.0])  # mean 2, population std 1
    assert normalize_advantages(a).tolist() == pytest.approx([-1.0, 1.0], abs=1e-6)


def test_ppo_losses_hand_example():
    # Two samples, clip 0.2, no advantage normalisation.
    # Sample 0: ratio = e^{log 1.5} = 1.5, A = +1 -> max(-1.5, -1.2) = -1.2 (clipped, counts in clipfrac)
    # Sample 1: ratio = 0.9, A = -2 -> max(1.8, 2*0.9=1.8) = 1.8 (inside range)
    # policy loss = (-1.2 + 1.8) / 2 = 0.3
    # Value, clip 0.2: s0: v=1.0, v_old=0.5, R=2 -> unclipped 1.0, clipped v=0.7 -> 1.69 -> max 1.69
    #                  s1: v=0.0, v_old=0.1, R=0 -> unclipped 0.0, clipped v=0.0 -> 0.0 -> 0
    # value loss = 0.5 * (1.69 + 0) / 2 = 0.4225
    # entropy mean = (1.0 + 0.5)/2 = 0.75; loss = 0.3 - 0.01*0.75 + 0.5*0.4225 = 0.50375
    # approx_kl = 0.5 * mean(log(1.5)^2, log(0.9)^2)
    old = torch.tensor([-1.0, -2.0])
    new = old + torch.log(torch.tensor([1.5, 0.9]))
    out = ppo_losses(
        new, old,
        adv=torch.tensor([1.0, -2.0]),
        new_v=torch.tensor([1.0, 0.0]), old_v=torch.tensor([0.5, 0.1]), returns=torch.tensor([2.0, 0.0]),
        entropy=torch.tensor([1.0, 0.5]),
        clip=0.2, vf_coef=0.5, ent_coef=0.01, norm_adv=False,
    )
    assert out.policy_loss.item() == pytest.approx(0.3, abs=1e-6)
    assert out.value_loss.item() == pytest.approx(0.4225, abs=1e-6)
    assert out.entropy.item() == pytest.approx(0.75)
    assert out.loss.item() == pytest.approx(0.50375, abs=1e-6)
    assert out.clipfrac.item() == pytest.approx(0.5)
    assert out.approx_kl.item() == pytest.approx(0.5 * (math.log(1.5) ** 2 + math.log(0.9) ** 2) / 2, rel=1e-5)


def test_value_clipping_takes_the_larger_loss():
    # v moved from 0 to 1 toward R=1: unclipped loss 0, clipped v=0.1 gives 0.81 -> Baselines keeps 0.81.
    kw = dict(new_logp=torch.zeros(1), old_logp=torch.zeros(1), adv=torch.zeros(1), entropy=torch.zeros(1),
              new_v=torch.tensor([1.0]), old_v=torch.tensor([0.0]), returns=torch.tensor([1.0]),
              clip=0.1, vf_coef=0.5, ent_coef=0.0, norm_adv=False)
    assert ppo_losses(**kw).value_loss.item() == pytest.approx(0.5 * 0.81)
    assert ppo_losses(**kw, clip_vloss=False).value_loss.item() == pytest.approx(0.0)


def test_policy_gradient_zero_outside_clip_range():
    # A>0 and ratio above 1+clip: the clipped term wins and carries no gradient w.r.t. new_logp.
    new = torch.tensor([math.log(2.0)], requires_grad=True)
    out = ppo_losses(new, torch.zeros(1), torch.tensor([1.0]), torch.zeros(1), torch.zeros(1), torch.zeros(1),
                     torch.zeros(1), clip=0.1, vf_coef=0.5, ent_coef=0.0, norm_adv=False)
    out.policy_loss.backward()
    assert new.grad.item() == 0.0
    # inside the range the gradient is -A * ratio
    new2 = torch.tensor([math.log(1.05)], requires_grad=True)
    out2 = ppo_losses(new2, torch.zeros(1), torch.tensor([1.0]), torch.zeros(1), torch.zeros(1), torch.zeros(1),
                      torch.zeros(1), clip=0.1, vf_coef=0.5, ent_coef=0.0, norm_adv=False)
    out2.policy_loss.backward()
    assert new2.grad.item() == pytest.approx(-1.05)


def test_explained_variance():
    y = torch.tensor([1.0, 2.0, 3.0])
    assert explained_variance(y, y) == pytest.approx(1.0)
    assert explained_variance(torch.zeros(3), y) == pytest.approx(1.0 - (2 / 3) / (2 / 3))
    assert math.isnan(explained_variance(y, torch.ones(3)))


def test_mask_drops_forced_steps_from_policy_terms_only():
    # Sample 1 is a forced FIRE step (mask False): huge advantage and ratio must not matter for the policy,
    # but its value error must count in the value loss.
    new = torch.log(torch.tensor([1.05, 3.0]))
    out = ppo_losses(new, torch.zeros(2), adv=torch.tensor([2.0, 100.0]),
                     new_v=torch.tensor([0.0, 0.0]), old_v=torch.tensor([0.0, 0.0]), returns=torch.tensor([0.0, 0.1]),
                     entropy=torch.tensor([1.0, 9.0]), clip=0.1, vf_coef=0.5, ent_coef=0.0,
                     norm_adv=False, mask=torch.tensor([True, False]))
    assert out.policy_loss.item() == pytest.approx(-2.0 * 1.05)
    assert out.entropy.item() == pytest.approx(1.0)
    assert out.clipfrac.item() == 0.0
    assert out.value_loss.item() == pytest.approx(0.5 * (0.0 + 0.01) / 2)


def test_sharded_update_matches_single_shard_and_repeats_exactly():
    """ppo_update with minibatches split over 2 threads = the plain update up to float rounding, and is
    itself deterministic (gradients summed in a fixed order)."""
    from concurrent.futures import ThreadPoolExecutor

    from fls.models import build_model
    from fls.ppo.config import PPOConfig
    from fls.ppo.update import ppo_update

    # SGD and no grad clipping: the weights then move by exactly the gradients, so a mis-weighted shard
    # loss (which Adam's scale invariance could hide) shows up.
    ppo = PPOConfig(num_envs=2, num_steps=16, update_epochs=2, num_minibatches=2, max_grad_norm=1e9)
    g = torch.Generator().manual_seed(0)
    T, N = 16, 2
    data = (
        torch.randint(0, 256, (T, N, 4, 84, 84), dtype=torch.uint8, generator=g),
        torch.randint(0, 4, (T, N), generator=g),
        torch.full((T, N), -1.3),
        torch.randn(T, N, generator=g),
        torch.randn(T, N, generator=g),
        torch.randn(T, N, generator=g),
        torch.rand(T, N, generator=g) > 0.1,
    )

    def run(shards):
        torch.manual_seed(1)
        model = build_model("nature_cnn", 4)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with ThreadPoolExecutor(2) as pool:
            stats = ppo_update(model, opt, ppo, *data, pool=pool, shards=shards)
        return model.state_dict(), stats

    w1, s1 = run(1)
    w2, s2 = run(2)
    w2b, s2b = run(2)
    assert all(torch.equal(w2[k], w2b[k]) for k in w2) and s2 == s2b
    assert all(torch.allclose(w1[k], w2[k], atol=1e-6, rtol=1e-4) for k in w1)
    torch.manual_seed(1)
    w0 = build_model("nature_cnn", 4).state_dict()
    assert sum((w1[k] - w0[k]).abs().sum() for k in w0) > 1e-3  # the update did move the weights
    for k in s1:
        assert s1[k] == pytest.approx(s2[k], rel=1e-4, abs=1e-6)
