"""File names inside each stage's output directory: the stages that write them and the code that reads
them (resume, policy loading, the report) take them from here.

Where the directories themselves live (runs/<arch>/<game>/<seed>, evals/..., scores/...) is
``fls.layout``; each file's schema is in the docs page named beside its group.
"""

from __future__ import annotations

RUN_INFO = "run_info.json"  # every stage: resolved config, command, git, versions (fls.runinfo)

# `fls train --out DIR`, a run directory (docs/training.md, "Outputs in --out DIR")
CHECKPOINT = "checkpoint.pt"  # the latest checkpoint, for resuming
MODEL = "model.pt"  # the final checkpoint, written when the run finishes
TRAIN_METRICS = "metrics.csv"  # one row per update
TRAIN_EPISODES = "episodes.csv"  # one row per finished whole game
TRAIN_SUMMARY = "summary.json"  # written last: its presence means the run finished
LIVE_DIR = "dvclive"  # the dvclive mirror of metrics.csv
TB_DIR = "tensorboard"  # TensorBoard event files (train.tensorboard)

# `fls evaluate --out DIR` (docs/evaluation.md, "Outputs")
EVAL = "eval.json"  # everything: config, summary, episode rows, provenance, timing
EVAL_EPISODES = "episodes.csv"  # the episode rows
EVAL_METRICS = "metrics.json"  # dvc.yaml `metrics:`: the result numbers only

# `fls score --out DIR` (docs/saliency_metrics.md, "Outputs of fls score --out DIR")
SCORE_PER_INPUT = "per_input.parquet"  # one row per scored input
SCORE_PER_TRIAL = "per_trial.json"
SCORE_SUMMARY = "summary.json"
SCORE_METRICS = "metrics.json"  # dvc.yaml `metrics:`: counts and per-metric statistics only
