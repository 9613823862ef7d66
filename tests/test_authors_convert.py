"""The authors' Baselines model.pkl -> fls PolicyNet conversion is exact, for all 15 networks.

The reference is a plain numpy forward written here in TensorFlow's conventions (NHWC activations, HWIO
kernels, TF's SAME padding with the larger half after, VALID, H-W-C flatten), following the authors'
models_baselines.py layer by layer; it shares no code with fls's torch networks.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch

from fls.authors.convert import NETWORKS, PREFIX, ConversionError, convert_variables, expected_variables
from fls.authors.safe_pickle import safe_load
from fls.authors.synthetic import random_baselines_variables, write_joblib_like
from fls.models import build_model

# ------------------------------------------------------------------ numpy forward in TF conventions


def tf_conv(x, w, b, stride, padding):
    """tf.nn.conv2d(NHWC, HWIO) + Baselines' [1, C, 1, 1] bias reshaped to [1, 1, 1, C]."""
    kh, kw, _, cout = w.shape
    n, h, wd, _ = x.shape
    if padding == "SAME":
        oh, ow = math.ceil(h / stride), math.ceil(wd / stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, oh, ow, cout))
    for i in range(kh):
        for j in range(kw):
            out += x[:, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride, :] @ w[i, j]
    return out + b.reshape(1, 1, 1, cout)


relu = lambda x: np.maximum(x, 0)  # noqa: E731
softplus = lambda x: np.logaddexp(0.0, x)  # noqa: E731


def softmax_pixelwise(t):
    b, h, w, c = t.shape
    z = t.reshape(b, h * w, c)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).reshape(b, h, w, c)


def conv_transpose_ones(h, k, s, out_hw):
    """tf.nn.conv2d_transpose with a ones kernel, VALID, to output_shape out_hw (h: B, H, W, 1)."""
    b, hh, ww, _ = h.shape
    out = np.zeros((b, out_hw, out_hw, 1))
    for i in range(hh):
        for j in range(ww):
            out[:, i * s : i * s + k, j * s : j * s + k, :] += h[:, i : i + 1, j : j + 1, :]
    return out


class TFNet:
    def __init__(self, variables):
        self.v = {k[len(PREFIX) : -2]: np.asarray(a, np.float64) for k, a in variables.items() if k.startswith(PREFIX)}

    def conv(self, x, scope, stride, pad="VALID"):
        return tf_conv(x, self.v[scope + "/w"], self.v[scope + "/b"], stride, pad)

    def fc(self, x, scope):
        return x @ self.v[scope + "/w"] + self.v[scope + "/b"]

    def sparse(self, x, relu_last=True, scope="pi/"):
        x = relu(self.conv(x, scope + "c1", 4))
        x = relu(self.conv(x, scope + "c2", 2))
        x = self.conv(x, scope + "c3", 1)
        return relu(x) if relu_last else x

    def dense(self, x, relu_last=True):
        x = relu(self.conv(x, "pi/c1", 1, "SAME"))
        x = relu(self.conv(x, "pi/c2", 1, "SAME"))
        x = self.conv(x, "pi/c3", 1, "SAME")
        return relu(x) if relu_last else x

    def fls(self, x, scope="pi/", base2=False):
        h = relu(self.conv(x, scope + "h1", 1, "SAME"))
        h = self.conv(h, scope + "h2", 1, "SAME")
        return softplus(h * np.log(2)) / np.log(2) if base2 else softplus(h)

    def forward(self, network, obs_nhwc):
        x = obs_nhwc.astype(np.float64) / 255.0
        flat = lambda t: t.reshape(t.shape[0], -1)  # noqa: E731  (H, W, C order, as conv_to_fc)
        pool = lambda t, h: np.einsum("bhwc,bhw->bc", t, h)  # noqa: E731
        if network == "cnn":
            x = self.sparse(x)
            h = np.zeros(x.shape[:-1])
            x = flat(x)
        elif network == "cnn_daqn":
            x = self.sparse(x)
            h = self.conv(np.tanh(self.conv(x, "pi/h1", 1, "SAME")), "pi/h2", 1, "SAME")
            h = softmax_pixelwise(h)[..., 0]
            x = pool(x, h)
        elif network in ("cnn_rsppo", "cnn_rsppo_nopad"):
            if network == "cnn_rsppo":
                x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            x = self.sparse(x)
            x = x / np.sqrt(np.maximum((x**2).sum(axis=3, keepdims=True), 1e-12))
            a = self.conv(x, "pi/h1", 1, "SAME")
            a = np.where(a > 0, a, np.expm1(np.minimum(a, 0)))  # elu
            h = softmax_pixelwise(self.conv(a, "pi/h2", 1, "SAME")).sum(axis=-1, keepdims=True)
            x = flat(x * h)
            h = h[..., 0]
        elif network in ("cnn_sparse_fls_h1", "cnn_sparse_fls_x3"):
            x = relu(self.conv(x, "pi/c1", 4))
            h1 = self.fls(x, "pi/h1/")
            x = x * h1
            x = relu(self.conv(x, "pi/c2", 2))
            if network == "cnn_sparse_fls_x3":
                h2 = self.fls(x, "pi/h2/")
                x = x * h2
            x = relu(self.conv(x, "pi/c3", 1))
            if network == "cnn_sparse_fls_x3":
                h3 = self.fls(x, "pi/h3/")
                x = x * h3
                h = h1 + conv_transpose_ones(h2, 4, 2, 20) + conv_transpose_ones(h3, 8, 2, 20)
            else:
                h = h1
            x = flat(x)
            h = h[..., 0]
        elif network.startswith("cnn_dense_fls"):
            x = self.dense(x, relu_last=network == "cnn_dense_fls")
            h = self.fls(x)[..., 0]
            x = pool(x, h)
        else:  # the sparse FLS family
            x = self.sparse(x, relu_last="norelu" not in network)
            h = self.fls(x, base2=network.endswith("_sp2"))
            if network.endswith("_1x1"):
                pass  # same code path: the 1x1 kernels are in the variables
            if network.endswith("_norm"):
                h = h / h.sum(axis=(1, 2, 3), keepdims=True)
            if network.endswith("_pool"):
                h = h[..., 0]
                x = pool(x, h)
            else:
                x = flat(x * h)
                h = h[..., 0]
        latent = relu(self.fc(x, "pi/fc1"))
        return self.fc(latent, "pi"), self.fc(latent, "vf")[:, 0], h


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("network", list(NETWORKS))
def test_conversion_matches_tf_forward(network, tmp_path):
    rng = np.random.default_rng(zlib.crc32(network.encode()))
    variables = random_baselines_variables(network, num_actions=6, rng=rng)
    write_joblib_like(tmp_path / "model.pkl", variables)
    loaded = safe_load(tmp_path / "model.pkl")  # the file round trip the importer takes
    arch, num_actions, state = convert_variables(loaded, network)
    assert (arch, num_actions) == (NETWORKS[network], 6)
    with torch.device("meta"):  # skip the (slow) random init: every parameter is assigned below
        model = build_model(arch, num_actions)
    model.load_state_dict(state, assign=True, strict=True)
    model.eval()
    obs = rng.integers(0, 256, size=(2, 4, 84, 84), dtype=np.uint8)
    with torch.no_grad():
        out = model(torch.from_numpy(obs))
    logits, value, attention = TFNet(variables).forward(network, obs.transpose(0, 2, 3, 1))  # NCHW -> NHWC
    np.testing.assert_allclose(out.logits.numpy(), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.value.numpy(), value, rtol=1e-5, atol=1e-5)
    assert out.attention.shape == attention.shape
    np.testing.assert_allclose(out.attention.numpy(), attention, rtol=1e-5, atol=1e-5)
    assert np.abs(logits).max() > 1e-3  # a forward that collapsed to zeros would prove nothing


def test_flatten_order_matters():
    """The H-W-C -> C-H-W permutation of the first fc is needed: without it the logits differ."""
    rng = np.random.default_rng(3)
    variables = random_baselines_variables("cnn", 4, rng, optimizer=False)
    _, _, state = convert_variables(variables, "cnn")
    naive = torch.from_numpy(variables[PREFIX + "pi/fc1/w:0"].T.copy())
    assert not torch.allclose(naive, state["head.fc.weight"])


def _vars(network="cnn_sparse_fls"):
    return random_baselines_variables(network, 4, np.random.default_rng(0))


def test_missing_variable_is_named():
    v = _vars()
    del v[PREFIX + "pi/h2/w:0"]
    with pytest.raises(ConversionError, match=r"missing variable 'ppo2_model/pi/h2/w:0'") as e:
        convert_variables(v, "cnn_sparse_fls", where="x/model.pkl")
    assert "\n" not in str(e.value) and "x/model.pkl" in str(e.value)


def test_wrong_shape_is_named():
    v = _vars()
    v[PREFIX + "pi/c2/w:0"] = np.zeros((4, 4, 32, 63), np.float32)
    with pytest.raises(ConversionError, match=r"'ppo2_model/pi/c2/w:0' has shape \(4, 4, 32, 63\), expected \(4, 4, 32, 64\)"):
        convert_variables(v, "cnn_sparse_fls")


def test_other_networks_variables_are_refused():
    """A sparse_fls model.pkl declared as nature cnn: its attention variables are unexpected."""
    with pytest.raises(ConversionError, match=r"unexpected variable 'ppo2_model/pi/h1/(w|b):0' for network cnn"):
        convert_variables(_vars(), "cnn")
    with pytest.raises(ConversionError, match="unexpected variable 'ppo2_model/pi/h1/(w|b):0' for network cnn_sparse_fls_h1"):
        convert_variables(_vars(), "cnn_sparse_fls_h1")


def test_unknown_network():
    with pytest.raises(ConversionError, match="unknown network id 'cnn_lstm'"):
        convert_variables({}, "cnn_lstm")


def test_expected_variables_follow_models_baselines_scopes():
    names = expected_variables("cnn_sparse_fls_x3", 4)
    assert names[PREFIX + "pi/h3/h2/w:0"] == (3, 3, 256, 1)
    assert names[PREFIX + "pi/c1/b:0"] == (1, 32, 1, 1)
    assert names[PREFIX + "pi/w:0"] == (512, 4) and names[PREFIX + "vf/w:0"] == (512, 1)
    assert names[PREFIX + "pi/fc1/w:0"] == (3136, 512)
    assert expected_variables("cnn_dense_fls", 4)[PREFIX + "pi/fc1/w:0"] == (64, 512)
