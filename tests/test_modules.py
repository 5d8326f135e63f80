import math

import pytest
import torch

from aekit._utils import InputError
from aekit.accel import Conv2d
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


@pytest.mark.parametrize("cin,cout,k", [(32, 1, 3), (32, 3, 3), (64, 2, 5)])
def test_tap_conv_equals_conv2d(cin, cout, k):
    """The few-output-channel CPU path (1x1 conv + shifted sums) is nn.Conv2d to float tolerance."""
    torch.manual_seed(0)
    fast = Conv2d(cin, cout, k)
    assert fast.taps
    ref = torch.nn.Conv2d(cin, cout, k, padding="same")
    ref.load_state_dict(fast.state_dict())  # same parameters, same state-dict keys
    torch.nn.init.uniform_(fast.bias, -1, 1)
    ref.bias.data.copy_(fast.bias)
    x = torch.randn(4, cin, 9, 7).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    y, y_ref = fast(x), ref(x)
    # float32 sums in another order (and thread split): tolerances relative to each tensor's scale
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5 * float(y_ref.abs().max()))
    g = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, [x, fast.weight, fast.bias], g)
    grads_ref = torch.autograd.grad(y_ref, [x, ref.weight, ref.bias], g)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bfloat16 products, float32 sums
        y_bf16 = fast(x)
    assert float((y_bf16.detach().float() - y_ref.detach()).abs().max()) < 0.05 * float(y_ref.detach().abs().max())
    assert not Conv2d(16, 16, 3).taps and not Conv2d(32, 1, 4).taps  # many outputs / even kernel: oneDNN


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
def test_conv_encoder_pooling_order_is_equivalent(activation):
    """Pooling before a piecewise-linear activation gives the Keras order's values and gradients."""
    torch.manual_seed(0)
    net = build_net(n_features=64, architecture="conv", image_shape=(1, 8, 8), n_components=None, activation=activation)
    layers = list(net.encoder)
    acts = (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.Tanh)
    swapped = 0
    for i in range(len(layers) - 1):  # back to Keras order: Conv → act → MaxPool
        if isinstance(layers[i], torch.nn.MaxPool2d) and isinstance(layers[i + 1], acts):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
            swapped += 1
    assert swapped == (0 if activation == "tanh" else 2)  # tanh keeps the Keras order
    keras_order = torch.nn.Sequential(*layers)
    x = torch.rand(6, 64)
    x[:, :24] = 0  # blank rows give tied maxima, as MNIST's background does
    out, out_ref = net.encoder(x), keras_order(x)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=0)
    g = torch.randn_like(out)
    params = list(net.encoder.parameters())
    grads = torch.autograd.grad(out, params, g)
    grads_ref = torch.autograd.grad(out_ref, params, g)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_conv_decoder_equals_plain_layout():
    """The output conv that up-samples itself computes Keras' UpSample → Conv2D, with its state-dict keys."""
    torch.manual_seed(0)
    net = build_net(n_features=784, architecture="conv", n_components=None)
    layers = []
    for m in net.decoder:
        if isinstance(m, torch.nn.Identity):
            m = torch.nn.Upsample(scale_factor=2, mode="nearest")
        elif isinstance(m, Conv2d) and m.upsample > 1:
            plain = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, padding="same")
            plain.load_state_dict(m.state_dict())
            m = plain
        layers.append(m)
    plain_decoder = torch.nn.Sequential(*layers)
    assert list(plain_decoder.state_dict()) == list(net.decoder.state_dict())  # saved models stay loadable
    z = torch.randn(5, 7 * 7 * 16)
    out, out_ref = net.decoder(z), plain_decoder(z)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, list(net.decoder.parameters()), g)
    grads_ref = torch.autograd.grad(out_ref, list(plain_decoder.parameters()), g)
    for a, b in zip(grads, grads_ref, strict=True):
        # float32 sums over 5 x 28 x 28 positions in another order: tolerance relative to the gradient's scale
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


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
        (dict(architecture="conv", n_features=32 * 48), r"needs the images' shape .* image_shape=\(32, 48\)"),
        (dict(architecture="conv", n_features=500), r"no \(height, width\), grey or RGB, .* architecture='dense'"),
        (dict(architecture="conv", n_features=1200), r"image_shape=\(3, 20, 20\)"),  # RGB 20x20: not (30, 40)
        (dict(architecture="conv", n_features=240), r"image_shape=\(12, 20\)"),
    ],
)
def test_bad_architecture(kwargs, match):
    kwargs.setdefault("n_features", 784)
    with pytest.raises(InputError, match=match):
        build_net(**kwargs)
