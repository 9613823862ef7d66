"""R runs of one architecture as one batched call (torch.func vmap) against a Python loop over R models.

Why: multi-run training (fls.ppo.multirun) runs R models side by side, each with its own small batches:
8 observations per rollout step, 256 per minibatch. ``torch.func.stack_module_state`` +
``functional_call`` + ``vmap`` would turn the R forward (and backward) passes into one call on stacked
weights, which is what could pay on a GPU, where small kernels are launch-bound. This measures what it
gives on the machine it runs on, and checks how far the batched results are from the loop's (vmap
reorders float operations, so bit-identity is not expected; the difference is printed, not hidden).

Two workloads per (arch, R):

* ``rollout``: inference on 8 uint8 observations per run (``torch.inference_mode``), logits and values;
* ``update``: one minibatch of 256 per run, forward + backward of a PPO-shaped loss (policy NLL of
  given actions + 0.5 value MSE - 0.01 entropy); the loop uses ``loss.backward()`` per model, the
  batched form ``vmap(grad(loss))`` on the stacked weights.

    python benchmarks/bench_vmap.py --quick            # small repeats, < 60 s on a 2-core CPU
    python benchmarks/bench_vmap.py --json vmap.json   # more repeats
    python benchmarks/bench_vmap.py --device cuda      # on a GPU machine
Nothing here is used by training.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

NUM_ACTIONS = 4


def _models(arch: str, runs: int) -> list[torch.nn.Module]:
    from fls.models import build_model

    out = []
    for i in range(runs):
        torch.manual_seed(1 + 8 * i)
        out.append(build_model(arch, NUM_ACTIONS))
    return out


def _pair(
    loop: Callable[[], Any], batched: Callable[[], Any], repeats: int, sync: Callable[[], None]
) -> tuple[float, float, Any, Any]:
    """Median seconds of each, timed alternately (load from other processes hits both alike), and the
    last results of each (for the difference check)."""
    out_loop, out_vmap = loop(), batched()  # warm-up (allocator, kernels)
    sync()
    t_loop, t_vmap = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out_loop = loop()
        sync()
        t1 = time.perf_counter()
        out_vmap = batched()
        sync()
        t_vmap.append(time.perf_counter() - t1)
        t_loop.append(t1 - t0)
    return statistics.median(t_loop), statistics.median(t_vmap), out_loop, out_vmap


def _loss(logits: torch.Tensor, value: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1).mean()
    entropy = -(logp.exp() * logp).sum(-1).mean()
    return nll + 0.5 * (value - returns).pow(2).mean() - 0.01 * entropy


def bench_case(
    arch: str, runs: int, repeats: int, rollout_batch: int = 8, minibatch: int = 256, device: str = "cpu"
) -> dict[str, Any]:
    dev = torch.device(device)
    models = [m.to(dev) for m in _models(arch, runs)]
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def fmodel(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = functional_call(base, (p, b), (x,))
        return out.logits, out.value

    gen = torch.Generator().manual_seed(7)
    obs8 = torch.randint(0, 256, (runs, rollout_batch, 4, 84, 84), generator=gen, dtype=torch.uint8)
    obs = torch.randint(0, 256, (runs, minibatch, 4, 84, 84), generator=gen, dtype=torch.uint8)
    actions = torch.randint(0, NUM_ACTIONS, (runs, minibatch), generator=gen)
    returns = torch.randn(runs, minibatch, generator=gen)
    obs8, obs, actions, returns = (t.to(dev) for t in (obs8, obs, actions, returns))

    # (a) rollout inference
    def loop_infer() -> list[tuple[torch.Tensor, torch.Tensor]]:
        with torch.inference_mode():
            return [(o.logits, o.value) for o in (m(obs8[i]) for i, m in enumerate(models))]

    batched_infer_fn = vmap(fmodel)

    def vmap_infer() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            return batched_infer_fn(params, buffers, obs8)

    t_loop_a, t_vmap_a, ref, got = _pair(loop_infer, vmap_infer, repeats * 4, sync)
    diff_a = max(
        max((got[0][i] - ref[i][0]).abs().max().item(), (got[1][i] - ref[i][1]).abs().max().item()) for i in range(runs)
    )

    # (b) one minibatch forward + backward
    def loop_update() -> list[dict[str, torch.Tensor]]:
        grads = []
        for i, m in enumerate(models):
            m.zero_grad(set_to_none=True)
            out = m(obs[i])
            _loss(out.logits, out.value, actions[i], returns[i]).backward()
            grads.append({k: p.grad for k, p in m.named_parameters()})
        return grads

    def one_loss(p, b, x, a, r):
        logits, value = fmodel(p, b, x)
        return _loss(logits, value, a, r)

    batched_grad_fn = vmap(grad(one_loss))

    def vmap_update() -> dict[str, torch.Tensor]:
        return batched_grad_fn(params, buffers, obs, actions, returns)

    t_loop_b, t_vmap_b, ref_g, got_g = _pair(loop_update, vmap_update, repeats, sync)
    diff_b = max((got_g[k][i] - ref_g[i][k]).abs().max().item() for i in range(runs) for k in ref_g[i])
    scale_b = max(ref_g[i][k].abs().max().item() for i in range(runs) for k in ref_g[i])
    return {
        "arch": arch,
        "runs": runs,
        "rollout": {"batch_per_run": rollout_batch, "loop_s": t_loop_a, "vmap_s": t_vmap_a,
                    "speedup": t_loop_a / t_vmap_a, "max_abs_diff": diff_a},
        "update": {"batch_per_run": minibatch, "loop_s": t_loop_b, "vmap_s": t_vmap_b,
                   "speedup": t_loop_b / t_vmap_b, "max_abs_diff_grad": diff_b, "max_abs_grad": scale_b},
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'arch':<11} {'R':>2} | {'rollout loop ms':>15} {'vmap ms':>8} {'x':>5} {'max|d|':>8} | "
            f"{'update loop ms':>14} {'vmap ms':>8} {'x':>5} {'max|dgrad|':>10} {'max|grad|':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        a, b = r["rollout"], r["update"]
        lines.append(
            f"{r['arch']:<11} {r['runs']:>2} | {a['loop_s'] * 1e3:>15.2f} {a['vmap_s'] * 1e3:>8.2f} {a['speedup']:>5.2f} "
            f"{a['max_abs_diff']:>8.1e} | {b['loop_s'] * 1e3:>14.1f} {b['vmap_s'] * 1e3:>8.1f} {b['speedup']:>5.2f} "
            f"{b['max_abs_diff_grad']:>10.1e} {b['max_abs_grad']:>9.1e}"
        )
    lines.append("x = loop time / vmap time (> 1: vmap is faster); times are medians per call for all R runs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats (< 60 s on a 2-core CPU)")
    ap.add_argument("--archs", default="nature_cnn,sparse_fls")
    ap.add_argument("--runs", default="3,5", help="values of R")
    ap.add_argument("--repeats", type=int, default=None, help="timed update calls per case (rollout: 4x; default 5, quick 1)")
    ap.add_argument("--minibatch", type=int, default=256, help="update batch per run")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (GPU figures: unmeasured so far)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    rows = [
        bench_case(arch, int(r), repeats, minibatch=args.minibatch, device=args.device)
        for arch in args.archs.split(",")
        for r in args.runs.split(",")
    ]
    report = {
        "benchmark": "bench_vmap",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "device": args.device,
        "repeats": repeats,
        "minibatch": args.minibatch,
        "cases": rows,
    }
    print(table(rows))
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return report


if __name__ == "__main__":
    main()
