"""The PPO training loop (Baselines PPO2 semantics, CleanRL layout) with checkpoints and resume.

One call of ``train(cfg, out_dir)`` either starts a run in ``out_dir``, resumes it from
``out_dir/checkpoint.pt``, or, when ``summary.json`` says it already finished, returns without touching
anything. Outputs (schemas in docs/training.md): run_info.json, checkpoint.pt, model.pt, metrics.csv,
episodes.csv, summary.json (written last).

Why the loop looks the way it does:
* rollouts run under ``torch.inference_mode`` on uint8 observation tensors (the network scales by
  1/255 itself), so the 1024-step rollout costs little next to the update;
* on CPU the network runs in channels-last layout, which oneDNN convolutions run markedly faster;
* rewards are clipped to their sign for learning only; episode statistics use the raw whole-game score
  reported by ``fls.envs.vector`` (Baselines' Monitor under the episodic-life wrapper);
* a lost life ends the learning episode; the env's NOOP / FIRE / action-2 restart skips are hidden (as in
  Baselines' wrappers), so every stored transition is the agent's own action and the loss mask is all True.

The run directory (opening, resume checks, the CSV files) is ``fls.ppo.run_dir``; the update's maths and
its threaded shards are ``fls.ppo.update``.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical
from tqdm.auto import tqdm

from fls.atomic import atomic_write_json
from fls.checkpoint import Checkpoint, CheckpointError, rng_state, save_checkpoint, set_rng_state
from fls.device import resolve_device
from fls.envs.vector import make_vector_env
from fls.frames import OBS_SHAPE
from fls.games import get_game
from fls.models import build_model
from fls.ppo.config import TrainConfig
from fls.ppo.live_log import TrainingLog
from fls.ppo.losses import compute_gae
from fls.ppo.run_dir import (
    EPISODE_COLUMNS,
    METRIC_COLUMNS,
    CsvAppender,
    TrainResult,
    open_run,
    truncate_csv,
)
from fls.ppo.update import autocast_for, ppo_update, sample_actions
from fls.runinfo import write_run_info
from fls.stage_files import CHECKPOINT, MODEL, RUN_INFO, TRAIN_EPISODES, TRAIN_METRICS, TRAIN_SUMMARY

WINDOW = 100  # eprewmean = mean whole-game return of the last 100 finished games


def env_seed(seed: int, update: int) -> int:
    """Env base seed for a session starting after ``update`` updates (env i gets this + i).

    A fresh run uses ``seed`` itself (the paper's seeds 1, 9, 17, 25, 33 give disjoint env seeds with 8 envs;
    docs/training.md, ``seed``).
    A resumed run cannot restore the emulators' state, so it restarts every game from a seed derived
    deterministically from (seed, update): resuming twice from the same checkpoint gives the same run.
    """
    if update == 0:
        return seed
    return int(np.random.SeedSequence([seed, update]).generate_state(1, dtype=np.uint32)[0] % (2**30)) + 100_000


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _nanmean(values: deque[float] | list[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


# ---------------------------------------------------------------------------------------------- training


def train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    stop_after_updates: int | None = None,
    on_update: Callable[[dict[str, Any]], None] | None = None,
    restart_on_change: bool = False,
) -> TrainResult:
    """Train (or resume, or recognise as finished) the run in ``out_dir``.

    ``stop_after_updates`` ends this session after that many updates (a checkpoint is written first), as
    an interruption that leaves a resumable run; ``on_update`` receives each metrics row (tests, callers).
    ``restart_on_change``: when ``out_dir`` holds a run made with other learning settings, delete that
    run's files and start afresh instead of refusing. DVC's ``train`` stage uses it: its outputs persist
    (for resume), so after a ``train`` param changes the old run is still in place and must give way.
    A corrupt checkpoint is still an error (it is not a settings change).
    """
    opened = open_run(cfg, out_dir, restart_on_change=restart_on_change)
    if isinstance(opened, TrainResult):
        return opened
    return _Trainer(cfg, opened.out, opened.checkpoint).run(stop_after_updates, on_update)


class _Trainer:
    def __init__(self, cfg: TrainConfig, out: Path, checkpoint: Checkpoint | None):
        self.cfg = cfg
        self.out = out
        self.ppo = cfg.ppo
        self.device = resolve_device(cfg.device)
        self.game = get_game(cfg.game)
        # Update threads: the update is one big conv forward/backward per minibatch and scales with cores.
        # Rollout threads: one. Batch-8 inference gains little from a second thread, and idle OpenMP
        # workers spinning between steps take CPU from the env's native threads on a small machine.
        # On CPU the update runs `torch_threads` minibatch shards in parallel Python threads, each with one
        # torch thread (see ppo_update); on GPU the update is one shard and torch keeps its threads.
        workers = cfg.torch_threads if cfg.torch_threads > 0 else _available_cpus()
        on_cpu = self.device.type == "cpu"
        self.shards = workers if on_cpu else 1
        self.pool = ThreadPoolExecutor(self.shards, thread_name_prefix="ppo-shard") if self.shards > 1 else None
        self.update_threads = 1 if on_cpu else workers
        self.rollout_threads = 1 if on_cpu else workers
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(cfg.seed)

        self.model = build_model(cfg.arch, self.game.num_actions).to(self.device)
        self.channels_last = self.device.type == "cpu" if cfg.channels_last == "auto" else cfg.channels_last == "on"
        self.autocast = autocast_for(cfg.precision, self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps)

        self.update = 0
        self.global_step = 0
        self.episodes = 0
        self.recent_returns: deque[float] = deque(maxlen=WINDOW)
        self.recent_lengths: deque[float] = deque(maxlen=WINDOW)
        self.resumed_from: int | None = None
        # The run's random streams: None = torch's global generators (a run alone in its process). A
        # process that trains several runs gives each its own (fls.ppo.multirun: use_own_rng).
        self.sample_gen: torch.Generator | None = None  # action sampling, on the model's device
        self.shuffle_gen: torch.Generator | None = None  # minibatch shuffles, on the CPU
        self._host_rng: dict[str, Any] | None = None  # numpy / python states to record with shuffle_gen
        if checkpoint is not None:
            self._restore(checkpoint)

    def use_own_rng(self) -> None:
        """Continue this run's random streams in private generators, from the global states as they are now.

        Called right after construction (seeding, model init, restore), the run then draws exactly the
        numbers it would have drawn from the global generators alone in its process.
        """
        cpu = torch.Generator()
        cpu.set_state(torch.get_rng_state())
        self.shuffle_gen = cpu
        if self.device.type == "cuda":
            dev = torch.Generator(device=self.device)
            dev.set_state(torch.cuda.get_rng_state(self.device))
            self.sample_gen = dev
        else:
            self.sample_gen = cpu
        self._host_rng = rng_state()

    def _rng_state(self) -> dict[str, Any]:
        if self.shuffle_gen is None or self._host_rng is None:
            return rng_state()
        return {**self._host_rng, "torch": self.shuffle_gen.get_state()}

    # -- checkpoint --------------------------------------------------------------------------------
    def _restore(self, ck: Checkpoint) -> None:
        path = self.out / CHECKPOINT
        if ck.arch != self.cfg.arch or int(ck.num_actions) != self.game.num_actions:
            raise CheckpointError(f"{path}: checkpoint is for {ck.arch} with {ck.num_actions} actions")
        try:
            self.model.load_state_dict(ck.model)
            if ck.optimizer is None:
                raise CheckpointError(f"{path}: checkpoint has no optimizer state, cannot resume")
            self.optimizer.load_state_dict(ck.optimizer)
        except (RuntimeError, ValueError, KeyError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{path}: state does not fit this model/optimizer ({str(exc).splitlines()[0]})") from None
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.update = int(ck.update)
        self.global_step = int(ck.global_step)
        stats = ck.stats if ck.stats is not None else {}
        self.episodes = int(stats.get("episodes", 0))
        self.recent_returns.extend(float(x) for x in stats.get("recent_returns", []))
        self.recent_lengths.extend(float(x) for x in stats.get("recent_lengths", []))
        if ck.rng is not None:
            set_rng_state(ck.rng)
        self.resumed_from = self.update

    def _payload(self, *, with_optimizer: bool) -> Checkpoint:
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.model.state_dict().items()}
        return Checkpoint(
            arch=self.cfg.arch,
            game=self.game.name,
            num_actions=self.game.num_actions,
            model=state,
            optimizer=self.optimizer.state_dict() if with_optimizer else None,
            update=self.update,
            global_step=self.global_step,
            num_updates=self.cfg.num_updates,
            learning_rate=self._lr(self.update + 1),
            config=self.cfg.to_dict(),
            rng=self._rng_state(),
            stats={
                "episodes": self.episodes,
                "recent_returns": list(self.recent_returns),
                "recent_lengths": list(self.recent_lengths),
            },
        )

    def _lr(self, update: int) -> float:
        """Baselines: lr * (1 - (update - 1) / nupdates) for update = 1..nupdates (never exactly 0)."""
        if not self.cfg.anneal_lr:
            return self.cfg.learning_rate
        frac = 1.0 - (update - 1.0) / self.cfg.num_updates
        return self.cfg.learning_rate * max(frac, 0.0)

    # -- outputs -----------------------------------------------------------------------------------
    def _prepare_outputs(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_run_info(
            self.out / RUN_INFO,
            self.cfg.to_dict(),
            stage="train",
            extra={"device": str(self.device), "resumed_from_update": self.resumed_from,
                   "planned_steps": self.cfg.planned_steps, "num_updates": self.cfg.num_updates},
        )
        # Rows past the checkpoint were produced by the interrupted session: drop them (they will be redone).
        u, gs = self.update, self.global_step
        truncate_csv(self.out / TRAIN_METRICS, METRIC_COLUMNS, lambda r: int(r["update"]) <= u)
        truncate_csv(self.out / TRAIN_EPISODES, EPISODE_COLUMNS, lambda r: int(r["global_step"]) <= gs)
        for stale in (MODEL,):
            if (self.out / stale).exists() and self.update < self.cfg.num_updates:
                (self.out / stale).unlink()

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, stop_after: int | None, on_update: Callable[[dict[str, Any]], None] | None) -> TrainResult:
        cfg, ppo, dev = self.cfg, self.ppo, self.device
        self._prepare_outputs()
        n, T = ppo.num_envs, ppo.num_steps
        env = make_vector_env(
            self.game.name, n, env_seed(cfg.seed, self.update), episodic_life=True, noop_max=cfg.noop_max,
            max_episode_steps=cfg.episode_cap, num_threads=cfg.env_threads,
        )
        obs_buf = torch.zeros((T, n, *OBS_SHAPE), dtype=torch.uint8, device=dev)
        act_buf = torch.zeros((T, n), dtype=torch.long, device=dev)
        logp_buf = torch.zeros((T, n), device=dev)
        rew_buf = torch.zeros((T, n), device=dev)
        done_buf = torch.zeros((T, n), device=dev)
        # What the envs return lands in host tensors: rewards and dones (read only by the GAE after the
        # rollout) go to the device once per rollout, observations through two pinned staging buffers
        # (asynchronous copies). On the CPU the host tensors are the rollout buffers themselves.
        staged = _HostStaging(dev, n)
        rew_host = staged.like(rew_buf)
        done_host = staged.like(done_buf)
        val_buf = torch.zeros((T, n), device=dev)
        # Every agent step executes the agent's action (the env's restarts are hidden skips), so the
        # policy-loss mask of ppo_update is all True.
        valid_buf = torch.ones((T, n), dtype=torch.bool, device=dev)

        metrics = CsvAppender(self.out / TRAIN_METRICS, METRIC_COLUMNS)
        episodes_csv = CsvAppender(self.out / TRAIN_EPISODES, EPISODE_COLUMNS)
        live = TrainingLog.replaying(self.out, self.out / TRAIN_METRICS, tensorboard=cfg.tensorboard)  # dvclive mirror
        bar = tqdm(total=cfg.planned_steps, initial=self.global_step, unit="step", disable=not cfg.progress,
                   desc=f"train {cfg.arch} {self.game.name} s{cfg.seed}", dynamic_ncols=True)
        start_time = time.perf_counter()
        start_step = self.global_step
        done_this_session = 0
        status = "finished"
        try:
            next_obs = staged.obs(env.reset())
            next_done = torch.zeros(n)  # host: done flags are only read by the GAE
            while self.update < cfg.num_updates:
                if stop_after is not None and done_this_session >= stop_after:
                    status = "stopped"
                    break
                update = self.update + 1
                lr = self._lr(update)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr

                # ---- rollout
                t_rollout = time.perf_counter()
                torch.set_num_threads(self.rollout_threads)
                with torch.inference_mode():
                    for t in range(T):
                        obs_buf[t] = next_obs
                        done_host[t] = next_done
                        logits, value = self._policy(next_obs)
                        dist = Categorical(logits=logits, validate_args=False)
                        action = sample_actions(dist, self.sample_gen)
                        act_buf[t] = action
                        logp_buf[t] = dist.log_prob(action)
                        val_buf[t] = value
                        step = env.step(action.cpu().numpy())
                        rew_host[t] = torch.from_numpy(np.sign(step.reward))
                        next_obs = staged.obs(step.obs)
                        next_done = torch.from_numpy(step.done.astype(np.float32))
                        self.global_step += n
                        for ep in env.pop_episodes():
                            self.episodes += 1
                            self.recent_returns.append(ep.ret)
                            self.recent_lengths.append(ep.length)
                            episodes_csv.write({
                                "global_step": self.global_step, "update": update, "env": ep.env, "return": ep.ret,
                                "length": ep.length, "frames": ep.frames, "truncated": int(ep.truncated),
                            })
                    last_value = self._policy(next_obs)[1]
                    staged.upload(rew_host, rew_buf)
                    staged.upload(done_host, done_buf)
                    adv, returns = compute_gae(rew_buf, val_buf, done_buf, last_value, next_done.to(dev), ppo.gamma,
                                               ppo.gae_lambda)

                # ---- update
                t_update = time.perf_counter()
                torch.set_num_threads(self.update_threads)
                losses = self._learn(obs_buf, act_buf, logp_buf, adv, returns, val_buf, valid_buf)
                t_end = time.perf_counter()
                self.update = update
                done_this_session += 1
                elapsed = time.perf_counter() - start_time
                sps = (self.global_step - start_step) / elapsed if elapsed > 0 else float("nan")
                row = {
                    "global_step": self.global_step,
                    "update": update,
                    "eprewmean": _nanmean(self.recent_returns),
                    "episodes": self.episodes,
                    "charts/eplenmean": _nanmean(self.recent_lengths),
                    "charts/learning_rate": lr,
                    "charts/SPS": sps,
                    "time/rollout_s": t_update - t_rollout,
                    "time/update_s": t_end - t_update,
                    **losses,
                }
                metrics.write(row)
                metrics.flush()
                live.log(row)
                episodes_csv.flush()
                if on_update is not None:
                    on_update(row)
                bar.update(n * T)
                bar.set_postfix(SPS=f"{sps:.0f}", eprewmean=f"{row['eprewmean']:.2f}", refresh=False)
                if update % cfg.checkpoint_every == 0 or update == cfg.num_updates:
                    save_checkpoint(self.out / CHECKPOINT, self._payload(with_optimizer=True))
            if status == "stopped" and self.update % cfg.checkpoint_every != 0:
                # A deliberate stop keeps everything done so far.
                save_checkpoint(self.out / CHECKPOINT, self._payload(with_optimizer=True))
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
            bar.close()
            metrics.close()
            live.close()
            episodes_csv.close()
            env.close()

        elapsed = time.perf_counter() - start_time
        sps = (self.global_step - start_step) / elapsed if elapsed > 0 else float("nan")
        result = TrainResult(status, self.out, self.global_step, self.update, _nanmean(self.recent_returns),
                             self.episodes, elapsed, sps)
        if status == "finished":
            save_checkpoint(self.out / MODEL, self._payload(with_optimizer=False))
            atomic_write_json(self.out / TRAIN_SUMMARY, {
                "arch": cfg.arch,
                "game": self.game.name,
                "seed": cfg.seed,
                "global_step": self.global_step,
                "updates": self.update,
                "eprewmean": None if math.isnan(result.eprewmean) else result.eprewmean,
                "episodes": self.episodes,
                "wall_time_s": elapsed,
                "sps": sps,
                "resumed_from_update": self.resumed_from,
                "device": str(self.device),
            })
        return result

    def _policy(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rollout forward pass; on CPU split over the shard threads (sampling stays in this thread)."""
        if self.pool is None or obs.shape[0] < self.shards:
            with self.autocast():
                out = self.model(self._layout(obs))
            return out.logits.float(), out.value.float()
        parts = [self.pool.submit(self._forward_part, p) for p in torch.tensor_split(obs, self.shards)]
        outs = [f.result() for f in parts]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def _forward_part(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode(), self.autocast():
            out = self.model(self._layout(obs))
        return out.logits.float(), out.value.float()

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _learn(self, obs, actions, logp, adv, returns, values, valid) -> dict[str, float]:
        return ppo_update(self.model, self.optimizer, self.ppo, obs, actions, logp, adv, returns, values, valid,
                          channels_last=self.channels_last, pool=self.pool, shards=self.shards,
                          generator=self.shuffle_gen, autocast=self.autocast)


class _HostStaging:
    """Host side of the rollout's host-to-device traffic; on the CPU every method is the plain operation.

    On CUDA: observations are copied into one of two pinned buffers (alternating, so a copy still in
    flight is never overwritten: the next step's ``action.cpu()`` waits for it anyway) and sent with
    ``non_blocking=True``; per-step rewards and dones are collected in pinned host tensors and sent once
    per rollout, blocking (two small copies per rollout; the next rollout then overwrites them safely).
    """

    def __init__(self, device: torch.device, num_envs: int) -> None:
        self.device = device
        self.pinned = device.type == "cuda"
        self._obs = [torch.empty((num_envs, *OBS_SHAPE), dtype=torch.uint8, pin_memory=True) for _ in range(2)] if self.pinned else []
        self._turn = 0

    def like(self, device_buf: torch.Tensor) -> torch.Tensor:
        """The host tensor that collects ``device_buf``'s rows (the buffer itself on the CPU)."""
        if self.device.type == "cpu":
            return device_buf
        return torch.zeros(device_buf.shape, dtype=device_buf.dtype, pin_memory=self.pinned)

    def obs(self, frames: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(frames)
        if not self.pinned:
            return host.to(self.device)
        buf = self._obs[self._turn]
        self._turn ^= 1
        buf.copy_(host)
        return buf.to(self.device, non_blocking=True)

    def upload(self, host: torch.Tensor, device_buf: torch.Tensor) -> None:
        if host is not device_buf:
            device_buf.copy_(host)

