"""Composable pieces every architecture of the paper is assembled from.

Each piece reproduces the authors' OpenAI-Baselines (TensorFlow) network so that the parameter counts of
Table 2 come out exactly. The counts settle these details (every one is needed for an exact match):

* every convolution and fully connected layer has a bias (attention convs included);
* the DAQN "pool" head is ``sum over positions of x*h`` (64 features) -> fc 512, not a flatten;
* RS-PPO's attention is 1x1 conv 512 -> 1x1 conv 2 (two heads), and its 1-pixel input pad adds nothing;
* FLS is conv 256 kxk -> conv 1 kxk with k = 3 (147,712 + 2,305 parameters on 64 channels);
* sparse_fls_each puts one FLS module on each of the 32-, 64- and 64-channel maps (76,289 + 2 * 150,017).

Convolutions are PyTorch NCHW; "SAME" here is symmetric padding ``(k - 1) / 2`` at stride 1, which is what
TensorFlow's SAME does for odd kernels (all kernels used are odd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN_GAIN = math.sqrt(2.0)  # Baselines' init_scale for every conv and hidden fc
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0
LN2 = math.log(2.0)


def init_orthogonal(layer: nn.Conv2d | nn.Linear, gain: float = HIDDEN_GAIN) -> nn.Module:
    """Baselines' PPO2 init: orthogonal weights, zero bias (the trainer relies on this for comparability)."""
    nn.init.orthogonal_(layer.weight, gain=gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


@dataclass(frozen=True)
class ConvLayer:
    """One conv of a trunk; ``same`` selects symmetric SAME padding (stride 1 only), else VALID."""

    out_channels: int
    kernel: int
    stride: int
    same: bool = False

    def output_size(self, size: int) -> int:
        if self.same:
            return size
        return (size - self.kernel) // self.stride + 1


# Nature-CNN block (Mnih et al. 2015): 84x84 -> 20x20 -> 9x9 -> 7x7.
SPARSE_LAYERS: tuple[ConvLayer, ...] = (
    ConvLayer(32, 8, 4),
    ConvLayer(64, 4, 2),
    ConvLayer(64, 3, 1),
)
# The paper's Dense block: the same channel widths at stride 1, so its 84x84 grid keeps small receptive fields.
DENSE_LAYERS: tuple[ConvLayer, ...] = (
    ConvLayer(32, 7, 1, same=True),
    ConvLayer(64, 5, 1, same=True),
    ConvLayer(64, 3, 1, same=True),
)
TRUNK_LAYERS: dict[str, tuple[ConvLayer, ...]] = {"sparse": SPARSE_LAYERS, "dense": DENSE_LAYERS}


def trunk_output_size(layers: tuple[ConvLayer, ...], size: int) -> int:
    """Side of the square map that ``layers`` make of a ``size`` x ``size`` input."""
    for layer in layers:
        size = layer.output_size(size)
    return size


def relative_geometry(layers: tuple[ConvLayer, ...], src: int, dst: int) -> tuple[int, int, int]:
    """(receptive field, stride, padding) of one unit of layer ``dst`` on the output grid of layer ``src``.

    ``src = -1`` means the trunk's input image. This is what a ones-kernel transposed conv needs to paint a
    deeper attention map onto a shallower grid (sparse_fls_each, saliency rendering).
    """
    if not -1 <= src < dst < len(layers):
        raise ValueError(f"need -1 <= src < dst < {len(layers)}, got src={src}, dst={dst}")
    rf, stride, pad = 1, 1, 0
    for layer in layers[src + 1 : dst + 1]:
        rf += (layer.kernel - 1) * stride
        if layer.same:
            pad += (layer.kernel - 1) // 2 * stride
        stride *= layer.stride
    return rf, stride, pad


def _conv(in_channels: int, layer: ConvLayer) -> nn.Conv2d:
    padding = (layer.kernel - 1) // 2 if layer.same else 0
    if layer.same and (layer.stride != 1 or layer.kernel % 2 == 0):
        raise ValueError(f"SAME padding is only implemented for stride 1 and odd kernels, got {layer}")
    conv = nn.Conv2d(in_channels, layer.out_channels, layer.kernel, stride=layer.stride, padding=padding)
    return init_orthogonal(conv)


def spatial_softmax(z: torch.Tensor) -> torch.Tensor:
    """Softmax over the H*W positions, separately per sample and channel."""
    b, c, h, w = z.shape
    return F.softmax(z.reshape(b, c, h * w), dim=-1).reshape(b, c, h, w)


class FLSModule(nn.Module):
    """Free-Lunch Saliency gate: conv 256 kxk SAME -> ReLU -> conv 1 kxk SAME -> SoftPlus (or SoftPlus2).

    SoftPlus2(z) = softplus(z ln 2) / ln 2 outputs 1 (not ln 2) when z = 0, so an untrained gate passes
    features through unscaled. Output h is unnormalised and positive, shape (B, 1, H, W).
    """

    def __init__(self, in_channels: int, kernel: int = 3, hidden: int = 256, softplus2: bool = False) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"FLS kernel must be odd for SAME padding, got {kernel}")
        self.softplus2 = softplus2
        self.conv1 = init_orthogonal(nn.Conv2d(in_channels, hidden, kernel, padding=kernel // 2))
        self.conv2 = init_orthogonal(nn.Conv2d(hidden, 1, kernel, padding=kernel // 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.conv2(F.relu(self.conv1(x)))
        h = F.softplus(z * LN2) / LN2 if self.softplus2 else F.softplus(z)
        return x, h


class DAQNAttention(nn.Module):
    """Non-recurrent DARQN soft attention: 1x1 conv 256 -> tanh -> 1x1 conv 1 -> softmax over positions."""

    def __init__(self, in_channels: int, hidden: int = 256) -> None:
        super().__init__()
        self.conv1 = init_orthogonal(nn.Conv2d(in_channels, hidden, 1))
        self.conv2 = init_orthogonal(nn.Conv2d(hidden, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, spatial_softmax(self.conv2(torch.tanh(self.conv1(x))))


class RSAttention(nn.Module):
    """Region-sensitive module of Yang et al. (RS-Rainbow), as the authors ported it to PPO.

    The features are L2-normalised over channels *before* the attention convs, and it is the normalised map
    that the gate multiplies: returns (x / ||x||, h) where h = softmax_positions(head 1) + softmax_positions(head 2),
    so each of the two heads sums to 1 and h sums to 2 over the grid. Multiplying by the summed h equals summing
    the two per-head weighted feature maps, which is how the original module is described.
    """

    def __init__(self, in_channels: int, hidden: int = 512, heads: int = 2, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps  # tf.nn.l2_normalize's epsilon (on the squared norm)
        self.conv1 = init_orthogonal(nn.Conv2d(in_channels, hidden, 1))
        self.conv2 = init_orthogonal(nn.Conv2d(hidden, heads, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sq = x.pow(2).sum(dim=1, keepdim=True).clamp_min(self.eps)
        xn = x * torch.rsqrt(sq)
        heads = spatial_softmax(self.conv2(F.elu(self.conv1(xn))))
        return xn, heads.sum(dim=1, keepdim=True)


class GatedConvTrunk(nn.Module):
    """A conv trunk where selected layers are followed by an attention gate ``x <- x' * h``.

    One mechanism covers every architecture: nature_cnn has no gate, daqn/rsppo/sparse_fls/dense_fls gate the
    last layer, sparse_fls_first gates layer 0 and sparse_fls_each gates all three. Each gate sees the layer's
    output after its ReLU (the last ReLU is absent when ``last_relu`` is False).
    ``forward`` returns the gated final map and the list of attention maps h, shallowest first.
    """

    def __init__(
        self,
        layers: tuple[ConvLayer, ...],
        gates: dict[int, nn.Module] | None = None,
        in_channels: int = 4,
        last_relu: bool = True,
        input_pad: int = 0,
        normalize_attention: bool = False,
    ) -> None:
        super().__init__()
        self.layers_spec = layers
        self.last_relu = last_relu
        self.input_pad = input_pad
        self.normalize_attention = normalize_attention
        convs = []
        c = in_channels
        for layer in layers:
            convs.append(_conv(c, layer))
            c = layer.out_channels
        self.convs = nn.ModuleList(convs)
        gates = gates or {}
        bad = [i for i in gates if not 0 <= i < len(layers)]
        if bad:
            raise ValueError(f"gate positions {bad} outside the trunk's layers 0..{len(layers) - 1}")
        self.gate_positions = tuple(sorted(gates))
        # ModuleDict needs string keys; keep the insertion order shallow -> deep for deterministic init order.
        self.gates = nn.ModuleDict({str(i): gates[i] for i in self.gate_positions})
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.input_pad:
            x = F.pad(x, (self.input_pad,) * 4)
        maps: list[torch.Tensor] = []
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < last or self.last_relu:
                x = F.relu(x)
            if i in self.gate_positions:
                x, h = self.gates[str(i)](x)
                if self.normalize_attention:
                    h = h / h.sum(dim=(2, 3), keepdim=True)
                x = x * h
                maps.append(h[:, 0])
        return x, maps


class PolicyValueHead(nn.Module):
    """fc 512 -> ReLU -> (policy logits, scalar value), with Baselines' gains (sqrt 2, 0.01, 1)."""

    def __init__(self, in_features: int, num_actions: int, hidden: int = 512) -> None:
        super().__init__()
        self.fc = init_orthogonal(nn.Linear(in_features, hidden))
        self.policy = init_orthogonal(nn.Linear(hidden, num_actions), gain=POLICY_GAIN)
        self.value = init_orthogonal(nn.Linear(hidden, 1), gain=VALUE_GAIN)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.relu(self.fc(features))
        return self.policy(hidden), self.value(hidden).squeeze(-1)


def combine(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Gated map (B, C, H, W) -> feature vector: "flatten" keeps positions, "pool" sums them away (C features).

    Flattening is channel-major (NCHW) where Baselines flattened NHWC; that only permutes the fc's inputs,
    and an orthogonal init is invariant to such a permutation in distribution.
    """
    if mode == "flatten":
        return x.flatten(start_dim=1)
    if mode == "pool":
        return x.sum(dim=(2, 3))
    raise ValueError(f"unknown combine mode '{mode}' (valid: flatten, pool)")


def ones_transpose(h: torch.Tensor, kernel: int, stride: int, padding: int = 0) -> torch.Tensor:
    """Paint each cell of h (B, H, W) over its kernel x kernel window: transposed conv with a ones kernel."""
    weight = torch.ones(1, 1, kernel, kernel, dtype=h.dtype, device=h.device)
    return F.conv_transpose2d(h.unsqueeze(1), weight, stride=stride, padding=padding).squeeze(1)
