"""The neural network: one composable autoencoder with Keras-style initialisation.

``AutoencoderNet`` = encoder (dense or convolutional) → optional Gaussian latent
→ decoder, plus an optional classifier head off the code. Inputs are always flat
``(B, n_features)``; a convolutional body reshapes to ``image_shape`` internally.
The decoder returns logits: the output activation is applied by ``reconstruct``
and folded into the loss (BCE from logits) while training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from aekit._utils import InputError
from aekit.accel import Conv2d  # the convolution with a CPU-shaped path: a hardware concern

ARCHITECTURES = ("dense", "conv")
OUTPUT_ACTIVATIONS = ("sigmoid", "linear")
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "linear": nn.Identity,
}


def make_activation(name: str, argname: str = "activation") -> nn.Module:
    if name not in ACTIVATIONS:
        raise InputError(f"{argname}={name!r} is not supported; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def keras_init_(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, as Keras initialises Dense and Conv2D."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def dense_stack(
    sizes: Sequence[int],
    activation: str,
    *,
    last_activation: str,
    batchnorm: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Linear layers ``sizes[0] → sizes[1] → ... → sizes[-1]``.

    Hidden layers are Linear → [BatchNorm] → activation → [Dropout]; the last
    layer is Linear → ``last_activation``.
    """
    layers: list[nn.Module] = []
    n = len(sizes) - 1
    for i in range(n):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < n - 1:
            if batchnorm:
                layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        elif last_activation != "linear":
            layers.append(make_activation(last_activation))
    return nn.Sequential(*layers)


class ChannelsLast(nn.Module):
    """Reorder ``(B, C, H, W)`` to channels-last memory: oneDNN convolutions run faster on it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)


# Max-pooling commutes exactly (values and gradients) with these piecewise-linear,
# non-decreasing activations, so the encoder pools first.
POOL_FIRST = ("relu", "leaky_relu", "linear")


def conv_encoder(
    image_shape: tuple[int, int, int], filters: Sequence[int], kernel_size: int, activation: str, batchnorm: bool
) -> nn.Sequential:
    """Unflatten to ``image_shape``, Conv(same) → act → MaxPool(2) per entry of ``filters``, Flatten.

    For activations in ``POOL_FIRST`` the module order is MaxPool → act (equivalent, faster).
    """
    layers: list[nn.Module] = [nn.Unflatten(1, tuple(image_shape)), ChannelsLast()]
    prev = image_shape[0]
    for f in filters:
        layers.append(Conv2d(prev, f, kernel_size))
        if batchnorm:
            layers.append(nn.BatchNorm2d(f))
        if activation in POOL_FIRST:  # the same values and gradients; the activation runs on 4x fewer
            layers += [nn.MaxPool2d(2), make_activation(activation)]
        else:
            layers += [make_activation(activation), nn.MaxPool2d(2)]
        prev = f
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def conv_decoder(
    image_shape: tuple[int, int, int], filters: Sequence[int], kernel_size: int, activation: str, batchnorm: bool
) -> nn.Sequential:
    """Mirror of ``conv_encoder``: Unflatten, Conv → act → UpSample(2) per level, Conv to channels (logits).

    The last UpSample is done by the output Conv2d (``upsample=2``), which can then mix
    channels before up-sampling; an Identity keeps its place so that the state-dict keys
    stay those of the plain layout.
    """
    c, h, w = image_shape
    down = 2 ** len(filters)
    layers: list[nn.Module] = [nn.Unflatten(1, (filters[-1], h // down, w // down)), ChannelsLast()]
    prev = filters[-1]
    for f in reversed(filters):
        layers.append(Conv2d(prev, f, kernel_size))
        if batchnorm:
            layers.append(nn.BatchNorm2d(f))
        layers += [make_activation(activation), nn.Upsample(scale_factor=2, mode="nearest")]
        prev = f
    layers[-1] = nn.Identity()  # up-sampled by the next layer
    layers += [Conv2d(prev, c, kernel_size, upsample=2), nn.Flatten()]
    return nn.Sequential(*layers)


class NoDecoder(nn.Module):
    """The decoder of a network built without one (``build_net(with_decoder=False)``): no weights, and a clear error."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        raise InputError(
            "this model has no decoder (a map fitted with reconstruction_weight=0); "
            "fit it with reconstruction_weight > 0 (e.g. 1.0) for inverse_transform and reconstructions"
        )


class AutoencoderNet(nn.Module):
    """Encoder → (Gaussian) code → decoder, with an optional classifier head.

    ``forward(x)`` with ``x`` of shape ``(B, n_features)`` returns a dict:
    ``code (B, d)``, ``recon_logits (B, n_features)``, and, when present,
    ``mu``/``logvar (B, d)`` and ``class_logits (B, n_classes)``.
    """

    code_size: int

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        output_activation: str = "sigmoid",
        mu: nn.Module | None = None,
        logvar: nn.Module | None = None,
        head: nn.Module | None = None,
        code_size: int,
    ) -> None:
        super().__init__()
        self.code_size = code_size  # width of the code returned by ``encode``
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise InputError(f"output_activation={output_activation!r} must be 'sigmoid' or 'linear'")
        self.encoder = encoder
        self.decoder = decoder
        self.mu = mu
        self.logvar = logvar
        self.head = head
        self.output_activation = output_activation

    @property
    def variational(self) -> bool:
        return self.mu is not None

    @property
    def has_decoder(self) -> bool:
        return not isinstance(self.decoder, NoDecoder)

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.encoder(x)  # (B, d) or (B, hidden) for a VAE
        if self.mu is None or self.logvar is None:
            return {"code": h}
        mu, logvar = self.mu(h), self.logvar(h)
        if self.training:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        else:
            z = mu  # transform is deterministic: the mean
        return {"code": z, "mu": mu, "logvar": logvar}

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.output_activation == "sigmoid" else logits

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction in data space, ``(B, n_features)``."""
        return self.output(self.decoder(z))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.encode(x)
        if self.has_decoder:
            out["recon_logits"] = self.decoder(out["code"])  # (B, n_features)
        if self.head is not None:
            out["class_logits"] = self.head(out["code"])  # (B, n_classes)
        return out


def build_net(
    *,
    n_features: int,
    architecture: str = "dense",
    hidden_layer_sizes: Sequence[int] = (500, 300, 100),
    n_components: int | None = 2,
    activation: str | None = None,
    code_activation: str = "tanh",
    output_activation: str = "sigmoid",
    batchnorm: bool = False,
    dropout: float = 0.0,
    image_shape: Sequence[int] | None = None,
    conv_filters: Sequence[int] = (32, 16),
    kernel_size: int = 3,
    variational: bool = False,
    n_classes: int | None = None,
    head_layer_sizes: Sequence[int] = (64, 128),
    head_activation: str = "tanh",
    head_dropout: float = 0.0,
    with_decoder: bool = True,
) -> AutoencoderNet:
    """Build and Keras-initialise an ``AutoencoderNet`` from plain parameters.

    ``activation=None`` takes the reference's default for the body: tanh for
    dense, relu for conv. ``with_decoder=False`` builds an encoder (and head) only: its
    ``decoder`` is a ``NoDecoder`` and ``forward`` returns no ``recon_logits``.
    """
    if activation is None:
        activation = "relu" if architecture == "conv" else "tanh"
    if architecture == "dense":
        if n_components is None:
            raise InputError("n_components=None is only allowed with architecture='conv'; give the code size, e.g. 2")
        hidden = list(hidden_layer_sizes)
        if variational:
            body = (
                dense_stack(
                    [n_features, *hidden], activation, last_activation=activation, batchnorm=batchnorm, dropout=dropout
                )
                if hidden
                else nn.Identity()
            )
            width = hidden[-1] if hidden else n_features
        else:
            body = dense_stack(
                [n_features, *hidden, n_components],
                activation,
                last_activation=code_activation,
                batchnorm=batchnorm,
                dropout=dropout,
            )
            width = n_components
        decoder = dense_stack(
            [n_components, *reversed(hidden), n_features],
            activation,
            last_activation="linear",
            batchnorm=batchnorm,
            dropout=dropout,
        )
    elif architecture == "conv":
        shape = _image_shape(image_shape, n_features, conv_filters)
        body = conv_encoder(shape, conv_filters, kernel_size, activation, batchnorm)
        decoder = conv_decoder(shape, conv_filters, kernel_size, activation, batchnorm)
        down = 2 ** len(conv_filters)
        flat = conv_filters[-1] * (shape[1] // down) * (shape[2] // down)
        width = flat
        if n_components is not None and not variational:
            body = nn.Sequential(
                body,
                nn.Linear(flat, n_components),
                *([make_activation(code_activation, "code_activation")] if code_activation != "linear" else []),
            )
            decoder = nn.Sequential(nn.Linear(n_components, flat), nn.ReLU(), decoder)
            width = n_components
        elif variational:
            code = n_components if n_components is not None else flat
            decoder = nn.Sequential(nn.Linear(code, flat), nn.ReLU(), decoder)
    else:
        raise InputError(f"architecture={architecture!r} must be 'dense' or 'conv'")

    mu = logvar = None
    code_size = width
    if variational:
        code_size = n_components if n_components is not None else width
        mu, logvar = nn.Linear(width, code_size), nn.Linear(width, code_size)
    head = None
    if n_classes is not None:
        head = dense_stack(
            [code_size, *head_layer_sizes, n_classes], head_activation, last_activation="linear", dropout=head_dropout
        )
    net = AutoencoderNet(
        body,
        decoder if with_decoder else NoDecoder(),
        output_activation=output_activation,
        mu=mu,
        logvar=logvar,
        head=head,
        code_size=code_size,
    )
    keras_init_(net)
    if logvar is not None:  # start the VAE with unit variance
        nn.init.zeros_(logvar.weight)
    if architecture == "conv":  # conv weights channels-last too (oneDNN's fast path)
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stub omits memory_format
    return net


def example_image_shape(n_features: int) -> tuple[int, int]:
    """A (height, width) holding ``n_features`` values, as near a square as they allow (for messages)."""
    h = next(d for d in range(math.isqrt(n_features), 0, -1) if n_features % d == 0) if n_features > 0 else 1
    return h, max(1, n_features // h)


def _poolable_shape(n_features: int, down: int) -> tuple[int, ...] | None:
    """The most nearly square (height, width), or (3, height, width), of ``n_features`` values whose sides divide
    by ``down``; None if there is none (for messages)."""
    found: list[tuple[float, tuple[int, ...]]] = []
    for c in (1, 3):
        if n_features % c:
            continue
        area = n_features // c
        for h in range(down, math.isqrt(area) + 1, down):
            w = area // h
            if area % h == 0 and w % down == 0:
                found.append((h / w, (h, w) if c == 1 else (c, h, w)))
    return max(found)[1] if found else None


def _image_shape(
    image_shape: Sequence[int] | None, n_features: int, conv_filters: Sequence[int]
) -> tuple[int, int, int]:
    if image_shape is None:
        side = int(round(n_features**0.5))
        if side * side != n_features:
            down = 2 ** len(conv_filters)
            shape = _poolable_shape(n_features, down)
            if shape is None:  # no shape to suggest: the pooling would refuse any
                raise InputError(
                    f"{{architecture='conv'}} needs images: no (height, width), grey or RGB, holds {n_features} "
                    f"features with sides divisible by {down} ({len(conv_filters)} pooling levels); "
                    "for tabular data use {architecture='dense'}",
                    param="architecture",
                    values={},
                )
            raise InputError(
                f"{{architecture='conv'}} needs the images' shape for {n_features} features (not a square): "
                f"pass it, e.g. {{image_shape={shape}}} (height, width) or (channels, height, width)",
                param="image_shape",
                values={},
            )
        image_shape = (side, side)
    values = {"image_shape": tuple(image_shape)}
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(
            "{image_shape} must be (height, width) or (channels, height, width)", param="image_shape", values=values
        )
    c, h, w = shape
    if c * h * w != n_features:
        raise InputError(
            f"{{image_shape}} holds {c * h * w} values but X has {n_features} features",
            param="image_shape",
            values=values,
        )
    depth = len(conv_filters)
    down = 2**depth
    if h % down or w % down:
        fits = next(d for d in range(depth, -1, -1) if h % 2**d == 0 and w % 2**d == 0)  # pooling levels that fit
        fix = f"use fewer levels, e.g. {{conv_filters={tuple(conv_filters[:fits])}}}, or " if fits else ""
        raise InputError(
            f"{{image_shape}}: height and width must be divisible by {down} for {depth} pooling levels; "
            f"{fix}pad the images",
            param="image_shape",
            values=values,
        )
    return shape


def start_at_mean_(net: AutoencoderNet, mean: torch.Tensor) -> None:
    """Set the decoder's output biases so that it starts out reconstructing the data's mean ``(n_features,)``.

    Zero biases (Keras' init) leave the network's first steps to learn the mean image, and RMSprop's
    first, sign-like steps do it by moving every layer at once: the codes of a tanh code layer all run
    into one corner within a few steps, where they barely move again (``aekit.health``'s warnings).
    For a conv decoder, one bias per channel: the channel's mean.
    """
    biases = [b for m in net.decoder.modules() if isinstance(b := getattr(m, "bias", None), torch.Tensor)]
    bias = biases[-1]
    target = mean.detach().to(bias.device, torch.float32)
    if bias.numel() != target.numel():  # conv: (C·H·W,) features, C biases
        target = target.reshape(bias.numel(), -1).mean(dim=1)
    if net.output_activation == "sigmoid":
        p = target.clamp(1e-3, 1 - 1e-3)
        target = torch.log(p / (1 - p))
    with torch.no_grad():
        bias.copy_(target.to(bias.dtype))
