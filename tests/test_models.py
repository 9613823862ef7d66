"""The fifteen architectures: Table 2 counts, forward/backward, gate semantics, init, the `fls models` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from fls.models import ARCHS, PolicyOutput, UnknownArchError, build_model, count_parameters, model_summaries
from fls.models.blocks import (
    DENSE_LAYERS,
    SPARSE_LAYERS,
    TRUNK_LAYERS,
    GatedConvTrunk,
    ones_transpose,
    relative_geometry,
)

# Table 2 of the paper (Breakout, 4 actions); embedded so the tests need nothing outside the repo.
TABLE2 = {
    "nature_cnn": 1_686_693,
    "daqn": 130_726,
    "rsppo": 1_720_999,
    "sparse_fls": 1_836_710,
    "sparse_fls_pool": 263_846,
    "dense_fls_pool": 280_358,
    "sparse_fls_first": 1_762_982,
    "sparse_fls_each": 2_063_016,
}
TABLE2_IDS = [
    "nature_cnn", "daqn", "rsppo", "rsppo_nopad", "sparse_fls", "sparse_fls_pool", "sparse_fls_norm",
    "sparse_fls_1x1", "sparse_fls_sp2", "sparse_fls_norelu", "sparse_fls_norelu_pool", "sparse_fls_first",
    "sparse_fls_each", "dense_fls_pool", "dense_fls_norelu_pool",
]  # fmt: skip


def obs_batch(b: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 4, 84, 84), dtype=torch.uint8, generator=g)


def test_registry_holds_exactly_the_spec_ids():
    assert list(ARCHS) == TABLE2_IDS


@pytest.mark.parametrize("arch", list(TABLE2))
def test_parameter_count_matches_table2(arch):
    torch.manual_seed(0)
    assert count_parameters(build_model(arch, 4)) == TABLE2[arch]


def test_parameter_count_scales_with_actions():
    # Only the policy layer depends on the action set: 513 parameters per action.
    assert count_parameters(build_model("sparse_fls", 18)) - TABLE2["sparse_fls"] == 14 * 513


@pytest.mark.parametrize("arch", TABLE2_IDS)
def test_forward_backward(arch):
    torch.manual_seed(1)
    model = build_model(arch, 6)
    out = model(obs_batch(2))
    assert isinstance(out, PolicyOutput)
    assert out.logits.shape == (2, 6) and out.value.shape == (2,)
    assert out.attention.shape == (2, *model.spec.attention_grid)
    for t in out:
        assert t.dtype == torch.float32 and torch.isfinite(t).all()
    weights = torch.randn(2, 6)
    ((out.logits * weights).sum() + out.value.sum()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{arch}: no gradient reaches {name}"


def test_attention_properties():
    torch.manual_seed(2)
    obs = obs_batch(3)
    with torch.no_grad():
        att = {a: build_model(a, 4)(obs).attention for a in TABLE2_IDS}
    assert torch.equal(att["nature_cnn"], torch.zeros(3, 7, 7))
    torch.testing.assert_close(att["daqn"].sum((1, 2)), torch.ones(3))  # one spatial softmax
    torch.testing.assert_close(att["rsppo"].sum((1, 2)), torch.full((3,), 2.0))  # two heads summed
    torch.testing.assert_close(att["sparse_fls_norm"].sum((1, 2)), torch.ones(3))
    for a in ("sparse_fls", "sparse_fls_first", "sparse_fls_each", "dense_fls_pool"):
        assert (att[a] > 0).all(), a  # SoftPlus is strictly positive


def test_float_input_on_255_scale_equals_uint8():
    torch.manual_seed(3)
    model = build_model("sparse_fls", 4)
    obs = obs_batch(2)
    with torch.no_grad():
        a, b = model(obs), model(obs.float())
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_bad_inputs_are_clear_errors():
    model = build_model("nature_cnn", 4)
    with pytest.raises(ValueError, match=r"shape \(B, 4, 84, 84\)"):
        model(torch.zeros(2, 84, 84, 4, dtype=torch.uint8))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_actions"):
            build_model("nature_cnn", bad)


def test_unknown_arch_names_valid_ids():
    with pytest.raises(UnknownArchError) as info:
        build_model("sparse_flss", 4)
    msg = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in msg and "sparse_flss" in msg
    assert all(a in msg for a in TABLE2_IDS)


def test_init_is_deterministic_given_seed():
    def state(seed):
        torch.manual_seed(seed)
        return build_model("sparse_fls_each", 4).state_dict()

    a, b, c = state(5), state(5), state(6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("arch", ["daqn", "rsppo", "sparse_fls_each", "dense_fls_pool"])
def test_orthogonal_init_with_baselines_gains(arch):
    torch.manual_seed(4)
    model = build_model(arch, 4)
    gains = {"head.policy.weight": 0.01, "head.value.weight": 1.0}
    n_checked = 0
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert torch.count_nonzero(p) == 0, name
            continue
        w = p.detach().reshape(p.shape[0], -1).double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        gain = gains.get(name, math.sqrt(2))
        torch.testing.assert_close(gram, gain**2 * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)
        n_checked += 1
    assert n_checked == len([n for n, _ in model.named_parameters() if n.endswith("weight")])


def _trunk_reference(model, obs, pad=0):
    """Conv trunk written out by hand with the model's weights (no gates)."""
    x = obs.float() / 255
    if pad:
        x = F.pad(x, (pad,) * 4)
    convs = model.trunk.convs
    x = F.relu(F.conv2d(x, convs[0].weight, convs[0].bias, stride=4))
    x = F.relu(F.conv2d(x, convs[1].weight, convs[1].bias, stride=2))
    return F.conv2d(x, convs[2].weight, convs[2].bias, stride=1)


def _head_reference(model, features):
    hidden = F.relu(F.linear(features, model.head.fc.weight, model.head.fc.bias))
    return F.linear(hidden, model.head.policy.weight, model.head.policy.bias)


@pytest.mark.parametrize("arch,pad", [("rsppo", 1), ("rsppo_nopad", 0)])
def test_rsppo_gates_the_normalised_map_with_the_summed_heads(arch, pad):
    torch.manual_seed(7)
    model = build_model(arch, 4)
    obs = obs_batch(2)
    gate = model.trunk.gates["2"]
    with torch.no_grad():
        out = model(obs)
        x = F.relu(_trunk_reference(model, obs, pad))
        xn = x / x.norm(dim=1, keepdim=True).clamp_min(1e-6)
        z = F.conv2d(F.elu(F.conv2d(xn, gate.conv1.weight, gate.conv1.bias)), gate.conv2.weight, gate.conv2.bias)
        heads = F.softmax(z.flatten(2), dim=-1).reshape_as(z)
        h = heads[:, 0] + heads[:, 1]
        logits = _head_reference(model, (xn * h[:, None]).flatten(1))
    torch.testing.assert_close(out.attention, h)
    torch.testing.assert_close(out.logits, logits)


def test_rsppo_padding_changes_the_output():
    torch.manual_seed(8)
    padded = build_model("rsppo", 4)
    unpadded = build_model("rsppo_nopad", 4)
    unpadded.load_state_dict(padded.state_dict())
    obs = obs_batch(1)
    with torch.no_grad():
        assert not torch.allclose(padded(obs).logits, unpadded(obs).logits)


def test_daqn_pools_x_weighted_by_softmax():
    torch.manual_seed(9)
    model = build_model("daqn", 4)
    obs = obs_batch(2)
    with torch.no_grad():
        out = model(obs)
        x = F.relu(_trunk_reference(model, obs))
        logits = _head_reference(model, torch.einsum("bchw,bhw->bc", x, out.attention))
    torch.testing.assert_close(out.logits, logits)
    assert model.head.fc.in_features == 64


@pytest.mark.parametrize("arch,relu", [("sparse_fls_sp2", True), ("sparse_fls_norelu", False)])
def test_zeroed_fls_gate_is_constant(arch, relu):
    # With the gate's last conv zeroed, h = SoftPlus(0) = ln 2 (SoftPlus2: exactly 1) everywhere.
    torch.manual_seed(10)
    model = build_model(arch, 4)
    gate = model.trunk.gates["2"]
    with torch.no_grad():
        gate.conv2.weight.zero_()
        gate.conv2.bias.zero_()
        obs = obs_batch(2)
        out = model(obs)
        level = 1.0 if model.spec.softplus2 else math.log(2)
        x = _trunk_reference(model, obs)
        x = F.relu(x) if relu else x
        torch.testing.assert_close(out.attention, torch.full((2, 7, 7), level))
        torch.testing.assert_close(out.logits, _head_reference(model, (x * level).flatten(1)))


def test_fls_first_feeds_gated_map_to_conv2():
    torch.manual_seed(11)
    model = build_model("sparse_fls_first", 4)
    seen = {}
    model.trunk.convs[1].register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    obs = obs_batch(2)
    with torch.no_grad():
        out = model(obs)
        c1 = model.trunk.convs[0]
        x1 = F.relu(F.conv2d(obs.float() / 255, c1.weight, c1.bias, stride=4))
    assert out.attention.shape == (2, 20, 20)
    torch.testing.assert_close(seen["x"], x1 * out.attention[:, None])


def test_fls_each_attention_is_h1_plus_painted_h2_h3():
    torch.manual_seed(12)
    model = build_model("sparse_fls_each", 4)
    maps = {}
    for key, gate in model.trunk.gates.items():
        gate.register_forward_hook(lambda m, args, out, key=key: maps.__setitem__(key, out[1][:, 0]))
    with torch.no_grad():
        att = model(obs_batch(2)).attention.numpy()
    h1, h2, h3 = (maps[k].numpy() for k in ("0", "1", "2"))
    assert h1.shape == (2, 20, 20) and h2.shape == (2, 9, 9) and h3.shape == (2, 7, 7)
    expected = h1.astype(np.float64).copy()
    for h, r in ((h2, 4), (h3, 8)):  # T(h, r x r ones, stride 2), painted cell by cell
        for i in range(h.shape[1]):
            for j in range(h.shape[2]):
                expected[:, 2 * i : 2 * i + r, 2 * j : 2 * j + r] += h[:, i, j, None, None]
    np.testing.assert_allclose(att, expected, rtol=1e-5, atol=1e-5)


def test_layer_geometry_agrees_with_render_specs():
    assert relative_geometry(SPARSE_LAYERS, 0, 1) == (4, 2, 0)
    assert relative_geometry(SPARSE_LAYERS, 0, 2) == (8, 2, 0)
    for spec in ARCHS.values():
        if spec.input_pad:  # rsppo: rendered like every sparse model, ignoring the 1-pixel shift (docs/models.md)
            continue
        deepest = spec.gate_layers[0] if spec.gate_layers else 2
        r = spec.render
        assert relative_geometry(TRUNK_LAYERS[spec.trunk], -1, deepest) == (r.receptive_field, r.stride, r.padding)
    assert relative_geometry(DENSE_LAYERS, -1, 2) == (13, 1, 6)


# The paper's three grid kinds (Table 2, docs/models.md "Saliency maps"): (attention grid, (r, s, p)).
_SPARSE, _FIRST, _DENSE = ((7, 7), (36, 8, 0)), ((20, 20), (8, 4, 0)), ((84, 84), (13, 1, 6))
PAPER_GEOMETRY = {
    **{arch: _SPARSE for arch in TABLE2_IDS[:11]},  # nature_cnn .. sparse_fls_norelu_pool, rsppo included
    "sparse_fls_first": _FIRST,
    "sparse_fls_each": _FIRST,
    "dense_fls_pool": _DENSE,
    "dense_fls_norelu_pool": _DENSE,
}


def test_derived_grid_and_render_equal_the_papers_for_every_arch():
    assert set(PAPER_GEOMETRY) == set(ARCHS) and len(PAPER_GEOMETRY) == 15
    for arch, (grid, render) in PAPER_GEOMETRY.items():
        spec = ARCHS[arch]
        assert spec.attention_grid == grid, arch
        assert (spec.render.receptive_field, spec.render.stride, spec.render.padding) == render, arch


def test_rsppo_grid_comes_from_the_padded_input_but_renders_unpadded():
    rsppo, nopad = ARCHS["rsppo"], ARCHS["rsppo_nopad"]
    assert rsppo.input_pad == 1 and nopad.input_pad == 0
    # 86x86 -> 20 -> 9 -> 7, the same grid as 84x84 -> 20 -> 9 -> 7; the render rule ignores the pad.
    assert rsppo.attention_grid == nopad.attention_grid == (7, 7)
    assert rsppo.render == nopad.render
    with torch.device("meta"):
        assert build_model("rsppo", 4).feature_grid == (7, 7)


def _seen_pixels(layers, src_size, unit):
    """Input pixels one unit of the last of ``layers`` depends on, by autograd through a real trunk.

    All weights positive, biases zero and the input all ones, so every ReLU passes and no contribution
    cancels: a pixel's gradient is non-zero exactly when the unit sees it.
    """
    trunk = GatedConvTrunk(tuple(layers), in_channels=1)
    with torch.no_grad():
        for conv in trunk.convs:
            conv.weight.fill_(0.01)
            conv.bias.zero_()
    x = torch.ones(1, 1, src_size, src_size, requires_grad=True)
    out, _ = trunk(x)
    out[0, 0, unit[0], unit[1]].backward()
    return x.grad[0, 0] != 0, out.shape[-1]


@pytest.mark.parametrize("trunk", sorted(TRUNK_LAYERS))
def test_relative_geometry_paints_exactly_the_pixels_a_unit_sees(trunk):
    layers = TRUNK_LAYERS[trunk]
    sizes = [84]
    for layer in layers:
        sizes.append(layer.output_size(sizes[-1]))
    for src in range(-1, len(layers) - 1):
        for dst in range(src + 1, len(layers)):
            rf, stride, pad = relative_geometry(layers, src, dst)
            src_size = sizes[src + 1]
            n = sizes[dst + 1]
            for unit in {(0, 0), (n - 1, n - 1), (0, n - 1), (n // 2, n // 3), (1, n - 2)}:
                seen, grid = _seen_pixels(layers[src + 1 : dst + 1], src_size, unit)
                assert grid == n
                one_hot = torch.zeros(1, n, n)
                one_hot[0, unit[0], unit[1]] = 1.0
                painted = ones_transpose(one_hot, rf, stride, pad)[0]
                assert painted.shape == (src_size, src_size), (src, dst)
                assert torch.equal(painted != 0, seen), (trunk, src, dst, unit)


def test_model_summaries_fields():
    rows = model_summaries(4)
    assert [r["arch"] for r in rows] == TABLE2_IDS
    for r in rows:
        spec = ARCHS[r["arch"]]
        assert r["attention_grid"] == list(spec.attention_grid)
        assert (r["receptive_field"], r["stride"], r["padding"]) == tuple(vars(spec.render).values())
        assert r["has_attention"] == (r["arch"] != "nature_cnn")
        assert r["description"]


def _invoke(args):
    from pipeline.app import app

    return CliRunner().invoke(app, ["models", *args])


def test_cli_models_json():
    result = _invoke(["--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 15
    by_arch = {r["arch"]: r for r in rows}
    for arch, n in TABLE2.items():
        assert by_arch[arch]["params"] == n
    for r in rows:
        assert {"arch", "params", "attention_grid", "receptive_field", "stride", "padding", "has_attention", "description"} <= set(r)


def test_cli_models_table_and_game():
    result = _invoke(["--game", "Seaquest"])
    assert result.exit_code == 0, result.output
    assert f"{TABLE2['nature_cnn'] + 14 * 513:,}" in result.stdout and "dense_fls_norelu_pool" in result.stdout
    bad = _invoke(["--game", "Pong"])
    assert bad.exit_code == 2 and "unknown game 'Pong'" in bad.output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arch", ["sparse_fls_each", "rsppo", "dense_fls_pool"])
def test_cuda_matches_cpu(arch):
    torch.manual_seed(13)
    model = build_model(arch, 4)
    obs = obs_batch(2)
    with torch.no_grad():
        cpu = model(obs)
        gpu = model.to("cuda")(obs.to("cuda"))
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-3, atol=1e-4)


def test_fresh_weights_do_not_depend_on_the_torch_thread_count():
    """The orthogonal init's QR would round differently with 2 threads than with 1 (see build_model)."""
    previous = torch.get_num_threads()
    try:
        weights = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(7)
            weights.append(build_model("nature_cnn", 4).state_dict())
            assert torch.get_num_threads() == threads  # build_model leaves the caller's setting alone
    finally:
        torch.set_num_threads(previous)
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k
