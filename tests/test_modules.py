import math

import pytest
import torch

from aekit._utils import InputError
from aekit.modules import build_net


def test_keras_initialisation():
    torch.manual_seed(0)
    net = build_net(n_features=784)
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            limit = math.sqrt(6 / (m.in_features + m.out_features))
            assert m.weight.abs().max() <= limit
            assert m.weight.abs().max() > 0.9 * limit  # uniform over the whole Glorot range
            assert torch.all(m.bias == 0)


def test_forward_shapes_and_tanh_code():
    net = build_net(n_features=784, n_classes=10)
    out = net(torch.rand(5, 784))
    assert out["code"].shape == (5, 2)
    assert out["recon_logits"].shape == (5, 784)
    assert out["class_logits"].shape == (5, 10)
    assert out["code"].abs().max() <= 1  # tanh code


def test_conv_shapes():
    net = build_net(n_features=784, architecture="conv", n_components=None)
    out = net(torch.rand(2, 784))
    assert out["code"].shape == (2, 7 * 7 * 16)
    assert net.decode(out["code"]).shape == (2, 784)
    with torch.no_grad():
        assert float(net.decode(out["code"]).min()) >= 0


def test_multichannel_conv():
    net = build_net(n_features=3 * 8 * 8, architecture="conv", image_shape=(3, 8, 8), n_components=4)
    assert net(torch.rand(2, 192))["recon_logits"].shape == (2, 192)


def test_vae_eval_is_deterministic():
    net = build_net(n_features=20, hidden_layer_sizes=(8,), variational=True).eval()
    x = torch.rand(4, 20)
    assert torch.equal(net.encode(x)["code"], net.encode(x)["code"])
    net.train()
    assert not torch.equal(net.encode(x)["code"], net.encode(x)["code"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(architecture="conv", image_shape=(27, 27)), "holds 729 values"),
        (dict(architecture="conv", n_features=30 * 30, image_shape=(30, 30)), "divisible by 4"),
        (dict(architecture="mlp"), "architecture"),
        (dict(activation="swish"), "activation"),
        (dict(architecture="conv", n_features=500), "needs image_shape"),
    ],
)
def test_bad_architecture(kwargs, match):
    kwargs.setdefault("n_features", 784)
    with pytest.raises(InputError, match=match):
        build_net(**kwargs)
