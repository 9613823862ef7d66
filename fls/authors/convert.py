"""Baselines (TensorFlow) variables of the authors' networks -> fls ``PolicyNet`` state dicts.

Baselines' PPO2 saves every global variable by name. The policy's live under ``ppo2_model/``: the network
in scope ``pi`` (convs ``c1..c3``, attention ``h1``/``h2``, or per-layer scopes ``h1``/``h2``/``h3`` each
holding its own ``h1``/``h2`` in the after-the-first-conv and after-each-conv variants, hidden ``fc1``),
the policy logits ``pi/{w,b}`` and the value ``vf/{w,b}``. Adam's slots (``.../Adam:0``, ``.../Adam_1:0``)
and ``beta1_power``/``beta2_power`` are optimizer state and are skipped.

Layout differences handled here:
* conv kernels are HWIO, biases ``[1, C, 1, 1]``; torch wants OIHW and ``[C]``;
* fc kernels are ``[in, out]``; torch wants ``[out, in]``;
* the first fc after a flatten reads an NHWC map flattened in H, W, C order, fls flattens NCHW in
  C, H, W order, so its input rows are permuted;
* padding needs no change: every SAME conv of these networks has stride 1 and an odd kernel, where TF's
  SAME pads ``(k-1)/2`` on both sides, exactly fls's symmetric padding (``check_same_padding`` asserts it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from fls.models import ARCHS, build_model
from fls.models.blocks import TRUNK_LAYERS
from fls.models.registry import OBS_SHAPE, ArchSpec, PolicyNet

# The authors' network ids (models_baselines.py / their README) -> fls architecture ids.
NETWORKS: dict[str, str] = {
    "cnn": "nature_cnn",
    "cnn_daqn": "daqn",
    "cnn_rsppo": "rsppo",
    "cnn_rsppo_nopad": "rsppo_nopad",
    "cnn_sparse_fls": "sparse_fls",
    "cnn_sparse_fls_pool": "sparse_fls_pool",
    "cnn_sparse_fls_norm": "sparse_fls_norm",
    "cnn_sparse_fls_1x1": "sparse_fls_1x1",
    "cnn_sparse_fls_sp2": "sparse_fls_sp2",
    "cnn_sparse_fls_norelu": "sparse_fls_norelu",
    "cnn_sparse_fls_norelu_pool": "sparse_fls_norelu_pool",
    "cnn_sparse_fls_h1": "sparse_fls_first",
    "cnn_sparse_fls_x3": "sparse_fls_each",
    "cnn_dense_fls": "dense_fls_pool",
    "cnn_dense_fls_norelu": "dense_fls_norelu_pool",
}
ARCH_TO_NETWORK: dict[str, str] = {v: k for k, v in NETWORKS.items()}
PREFIX = "ppo2_model/"
_OPTIMIZER = re.compile(r"(/Adam(_\d+)?:\d+$)|(^beta[12]_power(_\d+)?:\d+$)")


class ConversionError(ValueError):
    """A Baselines variable set that does not fit the named network (message names the variable)."""


@dataclass(frozen=True)
class _Param:
    tf_name: str  # without the ppo2_model/ prefix and the :0 suffix
    torch_key: str
    kind: str  # "conv_w", "conv_b", "fc_w", "fc_w_flat", "fc_b"
    torch_shape: tuple[int, ...]


def _shape_model(arch: str, num_actions: int) -> PolicyNet:
    """The network on the meta device: parameter shapes without the cost (or RNG draws) of an init."""
    with torch.device("meta"):
        return build_model(arch, num_actions)


def network_to_arch(network: str) -> str:
    try:
        return NETWORKS[network]
    except KeyError:
        raise ConversionError(f"unknown network id '{network}' (the authors' ids: {', '.join(NETWORKS)})") from None


def _gate_scope(spec: ArchSpec, layer: int) -> str:
    # models_baselines.py: one gate after the last conv sits directly in 'pi' (h1, h2); the variants with a
    # gate after the first / every conv wrap each gate in its own scope h<layer+1> (so pi/h1/h1, pi/h1/h2, ...)
    return "pi/" if spec.gate_layers == (2,) else f"pi/h{layer + 1}/"


def parameter_plan(spec: ArchSpec, model: PolicyNet) -> list[_Param]:
    """Every fls parameter of ``model`` with the Baselines variable it comes from."""
    state = model.state_dict()
    plan: list[_Param] = []

    def add(tf_name: str, key: str, kind: str) -> None:
        plan.append(_Param(tf_name, key, kind, tuple(state[key].shape)))

    for i in range(len(TRUNK_LAYERS[spec.trunk])):
        add(f"pi/c{i + 1}/w", f"trunk.convs.{i}.weight", "conv_w")
        add(f"pi/c{i + 1}/b", f"trunk.convs.{i}.bias", "conv_b")
    for g in spec.gate_layers:
        scope = _gate_scope(spec, g)
        for j in (1, 2):
            add(f"{scope}h{j}/w", f"trunk.gates.{g}.conv{j}.weight", "conv_w")
            add(f"{scope}h{j}/b", f"trunk.gates.{g}.conv{j}.bias", "conv_b")
    add("pi/fc1/w", "head.fc.weight", "fc_w_flat" if spec.combine == "flatten" else "fc_w")
    add("pi/fc1/b", "head.fc.bias", "fc_b")
    add("pi/w", "head.policy.weight", "fc_w")
    add("pi/b", "head.policy.bias", "fc_b")
    add("vf/w", "head.value.weight", "fc_w")
    add("vf/b", "head.value.bias", "fc_b")
    if {p.torch_key for p in plan} != set(state):
        raise AssertionError(f"{spec.id}: conversion plan does not cover the state dict")  # a bug here, not bad input
    return plan


def tf_shape(p: _Param) -> tuple[int, ...]:
    """The Baselines variable shape that produces fls parameter ``p``."""
    s = p.torch_shape
    if p.kind == "conv_w":
        return (s[2], s[3], s[1], s[0])
    if p.kind == "conv_b":
        return (1, s[0], 1, 1)
    if p.kind in ("fc_w", "fc_w_flat"):
        return (s[1], s[0])
    return s


def _to_torch(p: _Param, value: np.ndarray, feature_grid: tuple[int, int]) -> np.ndarray:
    if p.kind == "conv_w":
        return value.transpose(3, 2, 0, 1)
    if p.kind == "conv_b":
        return value.reshape(-1)
    if p.kind == "fc_w":
        return value.T
    if p.kind == "fc_w_flat":
        h, w = feature_grid
        n_in, n_out = value.shape
        c = n_in // (h * w)
        return value.reshape(h, w, c, n_out).transpose(2, 0, 1, 3).reshape(n_in, n_out).T
    return value


def check_same_padding(spec: ArchSpec) -> None:
    """TF SAME pads ``max(k - s, 0)`` in total (stride s dividing the input), the smaller half first; fls pads
    ``(k-1)//2`` on each side. They agree for stride 1 and odd k, the only SAME convs of these networks."""
    kernels = [layer.kernel for layer in TRUNK_LAYERS[spec.trunk] if layer.same]
    strides = [layer.stride for layer in TRUNK_LAYERS[spec.trunk] if layer.same]
    if spec.has_attention and spec.attention == "fls":
        kernels.append(spec.fls_kernel)
        strides.append(1)
    for k, s in zip(kernels, strides):
        total = max(k - s, 0)
        if (total // 2, total - total // 2) != ((k - 1) // 2, (k - 1) // 2):
            raise ConversionError(f"{spec.id}: SAME conv k={k} s={s} pads asymmetrically in TF; fls pads symmetrically")


def convert_variables(
    variables: Mapping[str, np.ndarray], network: str, *, where: str = "model.pkl"
) -> tuple[str, int, dict[str, torch.Tensor]]:
    """(fls arch id, number of actions, state dict) from a Baselines ``{variable_name: array}`` dict.

    Every expected variable must be present with its exact shape; a policy variable that is not expected
    (another network's, a typo) is an error too, so a model saved for one network never loads as another.
    """
    arch = network_to_arch(network)
    spec = ARCHS[arch]
    check_same_padding(spec)
    if not isinstance(variables, Mapping):
        raise ConversionError(f"{where}: expected a dict of variable name -> array, got {type(variables).__name__}")
    bias = variables.get(PREFIX + "pi/b:0")
    if bias is None:
        raise ConversionError(f"{where}: missing variable '{PREFIX}pi/b:0' (policy logits bias; network {network})")
    if not isinstance(bias, np.ndarray) or bias.ndim != 1 or bias.shape[0] < 1:
        raise ConversionError(f"{where}: variable '{PREFIX}pi/b:0' must be a 1-d array (one bias per action)")
    num_actions = int(bias.shape[0])
    model = _shape_model(arch, num_actions)
    grid = model.feature_grid
    plan = parameter_plan(spec, model)
    expected = {PREFIX + p.tf_name + ":0" for p in plan}
    for name in variables:
        if not isinstance(name, str):
            raise ConversionError(f"{where}: variable name {name!r} is not a string")
        if name in expected or _OPTIMIZER.search(name):
            continue
        raise ConversionError(f"{where}: unexpected variable '{name}' for network {network} (is this the right network?)")
    state: dict[str, torch.Tensor] = {}
    for p in plan:
        name = PREFIX + p.tf_name + ":0"
        if name not in variables:
            raise ConversionError(f"{where}: missing variable '{name}' (network {network})")
        value = variables[name]
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise ConversionError(f"{where}: variable '{name}' is not a float array")
        if tuple(value.shape) != tf_shape(p):
            raise ConversionError(f"{where}: variable '{name}' has shape {tuple(value.shape)}, expected {tf_shape(p)} (network {network})")
        if not np.isfinite(value).all():
            raise ConversionError(f"{where}: variable '{name}' holds non-finite values")
        arr = np.ascontiguousarray(_to_torch(p, value, grid), dtype=np.float32)
        state[p.torch_key] = torch.from_numpy(arr)
    return arch, num_actions, state


def expected_variables(network: str, num_actions: int) -> dict[str, tuple[int, ...]]:
    """``{variable_name: shape}`` a Baselines model.pkl of ``network`` holds (tests build fixtures from it)."""
    arch = network_to_arch(network)
    model = _shape_model(arch, num_actions)
    return {PREFIX + p.tf_name + ":0": tf_shape(p) for p in parameter_plan(ARCHS[arch], model)}


__all__ = [
    "ARCH_TO_NETWORK",
    "NETWORKS",
    "OBS_SHAPE",
    "ConversionError",
    "check_same_padding",
    "convert_variables",
    "expected_variables",
    "network_to_arch",
]
