"""The paper's fifteen actor-critic networks (one registry of composable blocks) and saliency rendering."""

from fls.models.registry import (
    ARCHS,
    ArchSpec,
    PolicyNet,
    PolicyOutput,
    RenderSpec,
    UnknownArchError,
    build_model,
    count_parameters,
    get_arch,
    model_summaries,
)
from fls.models.saliency import render_84, render_frame

__all__ = [
    "ARCHS",
    "ArchSpec",
    "PolicyNet",
    "PolicyOutput",
    "RenderSpec",
    "UnknownArchError",
    "build_model",
    "count_parameters",
    "get_arch",
    "model_summaries",
    "render_84",
    "render_frame",
]
