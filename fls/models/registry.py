"""The fifteen architectures of the paper as small declarative specs, and the one network class they build.

An architecture is data (``ArchSpec``), not a class: a trunk ("sparse" Nature-CNN block or "dense" block),
which trunk layers carry an attention gate and of which kind, and how the gated map becomes features
("flatten" or "pool"). ``PolicyNet`` assembles any spec from ``fls.models.blocks``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from fls.frames import OBS_SHAPE, OBS_SIZE
from fls.models.blocks import (
    TRUNK_LAYERS,
    DAQNAttention,
    FLSModule,
    GatedConvTrunk,
    PolicyValueHead,
    RSAttention,
    combine,
    ones_transpose,
    relative_geometry,
    trunk_output_size,
)


@dataclass(frozen=True)
class RenderSpec:
    """Ones-kernel transposed conv that paints an attention grid onto the 84x84 input (see saliency.py)."""

    receptive_field: int
    stride: int
    padding: int


@dataclass(frozen=True)
class ArchSpec:
    """One of the 15 architectures of the paper's Table 2 (docs/models.md).

    ``attention`` is the gate kind (None for nature_cnn); ``gate_layers`` lists the trunk layers (0-based)
    followed by a gate, and the attention output lives on the grid of the first of them. The attention grid
    and its render geometry are not declared but derived from the trunk's layers (``attention_grid``,
    ``render``), so they cannot drift from the network they describe.
    """

    id: str
    description: str
    trunk: Literal["sparse", "dense"] = "sparse"
    last_relu: bool = True
    input_pad: int = 0
    attention: Literal["fls", "daqn", "rs"] | None = "fls"
    gate_layers: tuple[int, ...] = (2,)
    fls_kernel: int = 3
    softplus2: bool = False
    normalize_attention: bool = False
    combine: Literal["flatten", "pool"] = "flatten"

    def __post_init__(self) -> None:
        where = f"architecture '{self.id}'"
        if self.trunk not in TRUNK_LAYERS:
            raise ValueError(f"{where}: trunk must be one of {sorted(TRUNK_LAYERS)}, got {self.trunk!r}")
        if self.combine not in ("flatten", "pool"):
            raise ValueError(f"{where}: combine must be 'flatten' or 'pool', got {self.combine!r}")
        if self.attention not in (None, "fls", "daqn", "rs"):
            raise ValueError(f"{where}: attention must be None, 'fls', 'daqn' or 'rs', got {self.attention!r}")
        if (self.attention is None) != (not self.gate_layers):
            raise ValueError(f"{where}: gate_layers must be empty exactly when attention is None")
        n = len(TRUNK_LAYERS[self.trunk])
        if list(self.gate_layers) != sorted(set(self.gate_layers)) or any(not 0 <= g < n for g in self.gate_layers):
            raise ValueError(f"{where}: gate_layers must be increasing layer indices in 0..{n - 1}, got {self.gate_layers}")

    @property
    def has_attention(self) -> bool:
        return self.attention is not None

    @property
    def grid_layer(self) -> int:
        """The trunk layer whose output grid the attention lives on: the first gate's, else (nature_cnn,
        which returns zeros) the last layer's, where its features are."""
        return self.gate_layers[0] if self.gate_layers else len(TRUNK_LAYERS[self.trunk]) - 1

    @property
    def attention_grid(self) -> tuple[int, int]:
        """(h, w) of the attention output: the padded input pushed through the trunk up to ``grid_layer``."""
        size = trunk_output_size(TRUNK_LAYERS[self.trunk][: self.grid_layer + 1], OBS_SIZE + 2 * self.input_pad)
        return (size, size)

    @property
    def render(self) -> RenderSpec:
        """Ones-kernel geometry that paints ``attention_grid`` onto the 84x84 input: one ``grid_layer`` unit's
        receptive field, stride and padding relative to the input (``relative_geometry``).

        Rule for a padded input (rsppo): ``input_pad`` is left out. Its grid really sits ``input_pad`` pixels
        up-left (true padding ``p + input_pad``), but the authors render rsppo like every sparse model, and
        we follow them so its saliency maps are theirs (docs/models.md); the padded input's grid is still 7x7.
        """
        return RenderSpec(*relative_geometry(TRUNK_LAYERS[self.trunk], -1, self.grid_layer))


def _specs() -> list[ArchSpec]:
    dense = dict(trunk="dense", combine="pool")
    return [
        ArchSpec("nature_cnn", "Nature CNN baseline: sparse block, flatten, no attention", attention=None, gate_layers=()),
        ArchSpec("daqn", "DAQN: sparse block, 1x1 tanh attention with spatial softmax, sum-pool", attention="daqn", combine="pool"),
        # rsppo's grid sits on the 86x86 padded input, one pixel up-left of the 84x84 one; ArchSpec.render
        # leaves input_pad out, so it is rendered with (36, 8, 0) like every sparse model, as the authors did.
        ArchSpec("rsppo", "RS-PPO: input padded to 86x86, sparse block, L2-normalised region-sensitive attention (2 heads), flatten", attention="rs", input_pad=1),
        ArchSpec("rsppo_nopad", "RS-PPO without the input padding", attention="rs"),
        ArchSpec("sparse_fls", "Sparse FLS: sparse block, FLS (3x3, SoftPlus), flatten"),
        ArchSpec("sparse_fls_pool", "Sparse FLS with spatial sum-pooling", combine="pool"),
        ArchSpec("sparse_fls_norm", "Sparse FLS with h divided by its spatial sum", normalize_attention=True),
        ArchSpec("sparse_fls_1x1", "Sparse FLS with 1x1 FLS convs", fls_kernel=1),
        ArchSpec("sparse_fls_sp2", "Sparse FLS with SoftPlus2 (outputs 1 at 0)", softplus2=True),
        ArchSpec("sparse_fls_norelu", "Sparse FLS without the ReLU before FLS", last_relu=False),
        ArchSpec("sparse_fls_norelu_pool", "Sparse FLS without the ReLU before FLS, sum-pooling", last_relu=False, combine="pool"),
        ArchSpec("sparse_fls_first", "Sparse block with FLS after the first conv (20x20), flatten", gate_layers=(0,)),
        ArchSpec("sparse_fls_each", "Sparse block with FLS after each conv; h1 + T(h2) + T(h3) on 20x20, flatten", gate_layers=(0, 1, 2)),
        ArchSpec("dense_fls_pool", "Dense FLS: dense block (84x84), FLS, sum-pooling", **dense),
        ArchSpec("dense_fls_norelu_pool", "Dense FLS without the ReLU before FLS, sum-pooling", last_relu=False, **dense),
    ]


ARCHS: dict[str, ArchSpec] = {s.id: s for s in _specs()}


class UnknownArchError(ValueError):
    pass


def get_arch(arch: str | ArchSpec) -> ArchSpec:
    if isinstance(arch, ArchSpec):
        return arch
    try:
        return ARCHS[arch]
    except (KeyError, TypeError):
        raise UnknownArchError(f"unknown architecture '{arch}' (valid: {', '.join(ARCHS)})") from None


class PolicyOutput(NamedTuple):
    """What every network returns.

    logits: (B, A) float32 unnormalised action log-probabilities.
    value: (B,) float32 state-value estimate.
    attention: (B, h, w) float32 attention on ``spec.attention_grid`` (all zeros for nature_cnn); render it
    with ``fls.models.saliency.render_84``.
    """

    logits: torch.Tensor
    value: torch.Tensor
    attention: torch.Tensor


def _make_gate(spec: ArchSpec, in_channels: int) -> nn.Module:
    if spec.attention == "fls":
        return FLSModule(in_channels, kernel=spec.fls_kernel, softplus2=spec.softplus2)
    if spec.attention == "daqn":
        return DAQNAttention(in_channels)
    if spec.attention == "rs":
        return RSAttention(in_channels)
    raise ValueError(f"{spec.id}: unknown attention kind {spec.attention!r}")


class PolicyNet(nn.Module):
    """Actor-critic network for one ``ArchSpec``; pure function of the observation (no sampling here)."""

    def __init__(self, spec: ArchSpec, num_actions: int) -> None:
        super().__init__()
        if isinstance(num_actions, bool) or not isinstance(num_actions, int) or num_actions < 1:
            raise ValueError(f"num_actions must be a positive integer, got {num_actions!r}")
        self.spec = spec
        self.num_actions = num_actions
        layers = TRUNK_LAYERS[spec.trunk]
        gates = {i: _make_gate(spec, layers[i].out_channels) for i in spec.gate_layers} if spec.has_attention else {}
        self.trunk = GatedConvTrunk(
            layers,
            gates,
            in_channels=OBS_SHAPE[0],
            last_relu=spec.last_relu,
            input_pad=spec.input_pad,
            normalize_attention=spec.normalize_attention,
        )
        size = trunk_output_size(layers, OBS_SHAPE[1] + 2 * spec.input_pad)
        self.feature_grid = (size, size)
        in_features = self.trunk.out_channels * (size * size if spec.combine == "flatten" else 1)
        self.head = PolicyValueHead(in_features, num_actions)
        # Deeper gates are painted onto the first gate's grid with ones kernels (sparse_fls_each).
        first = spec.gate_layers[0] if spec.gate_layers else None
        self._lift = [relative_geometry(layers, first, g) for g in spec.gate_layers[1:]] if first is not None else []

    def forward(self, obs: torch.Tensor) -> PolicyOutput:
        """obs: (B, 4, 84, 84), uint8 (or float on the same 0..255 scale, e.g. for input gradients)."""
        if obs.dim() != 4 or tuple(obs.shape[1:]) != OBS_SHAPE:
            raise ValueError(f"{self.spec.id}: expected observations of shape (B, 4, 84, 84), got {tuple(obs.shape)}")
        x = obs.float() / 255.0
        x, maps = self.trunk(x)
        logits, value = self.head(combine(x, self.spec.combine))
        return PolicyOutput(logits, value, self._attention(maps, x))

    def _attention(self, maps: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        if not maps:
            h, w = self.spec.attention_grid
            return x.new_zeros(x.shape[0], h, w)
        attention = maps[0]
        for h, (rf, stride, pad) in zip(maps[1:], self._lift):
            attention = attention + ones_transpose(h, rf, stride, pad)
        return attention


def build_model(arch: str | ArchSpec, num_actions: int) -> PolicyNet:
    """A freshly initialised network (draws from torch's global RNG: seed it first for reproducibility).

    Built with one torch thread: the orthogonal init's QR decomposition (LAPACK) rounds differently with
    more threads, so the weights would otherwise depend on the machine's core count and on whatever
    thread count an earlier run in the same process left set.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return PolicyNet(get_arch(arch), num_actions)
    finally:
        torch.set_num_threads(previous)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_summaries(num_actions: int = 4) -> list[dict]:
    """One row per architecture (Table 2 counts for num_actions = 4); builds each network to count it."""
    rows = []
    for spec in ARCHS.values():
        # Counting needs shapes only: on the meta device no weights are allocated or initialised (the
        # orthogonal init's QR decompositions made this take ~30 s on a 2-core CPU).
        with torch.device("meta"):
            model = build_model(spec.id, num_actions)
        rows.append(
            {
                "arch": spec.id,
                "params": count_parameters(model),
                "attention_grid": list(spec.attention_grid),
                "receptive_field": spec.render.receptive_field,
                "stride": spec.render.stride,
                "padding": spec.render.padding,
                "has_attention": spec.has_attention,
                "trunk": spec.trunk,
                "attention": spec.attention,
                "combine": spec.combine,
                "description": spec.description,
            }
        )
    return rows
