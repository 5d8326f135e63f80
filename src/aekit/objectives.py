"""Loss terms and training-time corruption. Every reduction is stated.

* reconstruction: mean over samples *and* features ("mean per pixel"), as Keras.
* classification: mean cross-entropy over the *labelled* samples (label -1 = unlabelled).
* KL: mean over samples of the sum over code dimensions, divided by ``n_features``
  so that it sits on the same per-pixel scale as the reconstruction term.
* neighbour embedding (parametric t-SNE): a batch estimate of t-SNE's KL(P || Q) up to a
  constant, mean over the batch's neighbour pairs plus the log of the mean kernel over its
  point pairs (see ``tsne_loss``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from aekit._utils import COMPUTE_LOCK, InputError, looks_like_pixels

RECONSTRUCTION_LOSSES = ("bce", "mse", "huber", "l1")
# the losses that compare the output itself (after the sigmoid, if any) with the target
_OUTPUT_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": F.mse_loss,
    "huber": F.huber_loss,
    "l1": F.l1_loss,
}
NOISE_KINDS = ("gaussian", "masking", "salt_pepper")
AUGMENTATIONS = ("affine",)
#: "affine": each training image moved by up to this fraction of its side (2 pixels of MNIST's 28) along each
#: axis and turned by up to this many degrees, uniformly at random
AFFINE_SHIFT, AFFINE_DEGREES = 1 / 14, 10.0


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, kind: str, output_activation: str) -> torch.Tensor:
    """Mean-per-element reconstruction loss from decoder logits, shape ``()``.

    ``kind``: "bce" (on the logits, sigmoid output only), or "mse" / "huber" / "l1" on the
    output (the sigmoid of the logits for a sigmoid output, the logits for a linear one).
    """
    if kind == "bce":
        if output_activation != "sigmoid":
            raise InputError("loss='bce' needs output_activation='sigmoid'; use loss='mse' for unbounded data")
        return F.binary_cross_entropy_with_logits(logits, target)
    compare = _OUTPUT_LOSSES.get(kind)
    if compare is not None:  # huber: delta=1, squared error below it, absolute above
        out = torch.sigmoid(logits) if output_activation == "sigmoid" else logits
        return compare(out, target)
    raise InputError(f"loss={kind!r} must be one of {RECONSTRUCTION_LOSSES}")


def classification_loss(class_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over labelled samples; ``y == -1`` samples contribute nothing.

    Written without data-dependent branches so that it never forces a host sync.
    """
    labelled = (y >= 0).to(class_logits.dtype)  # (B,)
    per_sample = F.cross_entropy(class_logits, y.clamp(min=0), reduction="none")  # (B,)
    return (per_sample * labelled).sum() / labelled.sum().clamp(min=1.0)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, n_features: int) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per sample, summed over code dims, per input feature."""
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)  # (B,)
    return kl.mean() / n_features


def student_t_log_kernel(sq_dist: torch.Tensor, dof: float) -> torch.Tensor:
    """``log w`` of the Student-t kernel ``w = (1 + d² / dof) ** (-(dof + 1) / 2)``; dof=1 is t-SNE's Cauchy kernel."""
    return -0.5 * (dof + 1.0) * torch.log1p(sq_dist / dof)


def tsne_loss(
    z: torch.Tensor, z_neighbour: torch.Tensor, dof: float, exaggeration: torch.Tensor | float = 1.0
) -> dict[str, torch.Tensor]:
    """Parametric t-SNE's loss on a batch: ``exaggeration * attraction + repulsion``.

    ``z`` ``(B, d)`` are the codes of B points drawn uniformly, ``z_neighbour`` ``(B, d)`` those of
    one input-space neighbour of each, drawn with probability p(j | i). t-SNE's KL(P || Q) is, up
    to a constant, ``E_P[-log w_ij] + log Z`` with ``Z`` the kernel's sum over all pairs; drawing
    i uniformly and j from p(j | i) draws pairs from the symmetrised P, so

    * attraction = mean over the B neighbour pairs of ``-log w``;
    * repulsion = log of the mean kernel over the pairs of distinct points among all 2B codes,
      which estimates ``log Z`` up to the constant ``log N (N - 1)``. (The drawn neighbours lean
      towards points that are many points' neighbours, a small bias; using them quadruples the
      pairs, which converged a little faster in a trial on free coordinates.)

    ``exaggeration`` multiplies the attraction (t-SNE's early exaggeration); a tensor may change
    between steps without rebuilding the loss.
    """
    attraction = -student_t_log_kernel((z - z_neighbour).pow(2).sum(1), dof).mean()
    points = torch.cat([z, z_neighbour])  # (2B, d)
    b = points.shape[0]
    sq = (points.unsqueeze(1) - points.unsqueeze(0)).pow(2).sum(2)  # (2B, 2B); exact differences: d is small
    diagonal = torch.eye(b, dtype=torch.bool, device=z.device)
    log_w = student_t_log_kernel(sq, dof).masked_fill(diagonal, -torch.inf)
    repulsion = torch.logsumexp(log_w.reshape(-1), 0) - float(np.log(b * (b - 1)))
    return {"attraction": attraction, "repulsion": repulsion, "loss": exaggeration * attraction + repulsion}


def corrupt(x: torch.Tensor, kind: str, factor: float, *, clip: bool = True) -> torch.Tensor:
    """Corrupt a batch for denoising training (uses torch's current RNG).

    gaussian: ``x + factor * N(0, 1)``, clipped to [0, 1] when ``clip``;
    masking: each value set to 0 with probability ``factor``;
    salt_pepper: each value set to 0 or 1 (equally likely) with probability ``factor``.
    """
    if kind == "gaussian":
        noisy = x + factor * torch.randn_like(x)
        return noisy.clamp_(0.0, 1.0) if clip else noisy
    if kind == "masking":
        return x * (torch.rand_like(x) >= factor).to(x.dtype)
    if kind == "salt_pepper":
        hit = torch.rand_like(x) < factor
        salt = (torch.rand_like(x) < 0.5).to(x.dtype)
        return torch.where(hit, salt, x)
    raise InputError(f"noise={kind!r} must be one of {NOISE_KINDS} or None")


def augment(
    x: torch.Tensor,
    kind: str,
    image_shape: tuple[int, int, int],
    scaler: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Random shifts and rotations of a batch of images ``x`` ``(B, C·H·W)`` (uses torch's current RNG).

    Each image is moved and turned on its own (bilinear resampling, zeros outside), so values in [0, 1]
    stay in [0, 1]. Unlike ``corrupt`` it makes new training images: the reconstruction target is the
    moved image, and a label stays the image's label. ``scaler``: the model's per-feature ``(offset,
    factor)`` ``(C·H·W,)``, which ``x`` is scaled by: images are moved in their own units (a pixel's
    offset would otherwise move with it, and the border fill be each pixel's mean).
    """
    if kind != "affine":
        raise InputError(f"augment={kind!r} must be one of {AUGMENTATIONS} or None")
    if scaler is not None:
        offset, factor = scaler
        return (augment(x * factor + offset, kind, image_shape) - offset) / factor
    b, (_, h, w) = x.shape[0], image_shape
    images = x.reshape(b, *image_shape)
    angle = (torch.rand(b, device=x.device) * 2 - 1) * (AFFINE_DEGREES * np.pi / 180)
    shift = (torch.rand(b, 2, device=x.device) * 2 - 1) * (2 * AFFINE_SHIFT)  # affine_grid's units: the side is 2
    cos, sin = angle.cos(), angle.sin()
    # a turn in pixels, in affine_grid's coordinates (x and y each span 2): the aspect ratio keeps it a turn
    theta = torch.stack(
        [torch.stack([cos, -sin * (h / w), shift[:, 0]], 1), torch.stack([sin * (w / h), cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros").reshape(x.shape)


def add_noise(
    X: np.ndarray, kind: str = "gaussian", factor: float = 0.4, *, random_state: int = 0, clip: bool | None = None
) -> np.ndarray:
    """``corrupt`` for arrays, deterministic in ``random_state``: a noisy test set as training makes them.

    ``X`` ``(n_samples, ...)``; the noise is in ``X``'s units (``factor`` a standard deviation for gaussian, a
    share of values for masking and salt_pepper, which sets values to 0 or 1: for images in [0, 1]). uint8
    images (uint8 reaching 128, the estimators' pixel rule) are corrupted in [0, 1], as a model trains on them,
    and come back as uint8, in the units they came; smaller uint8 numbers are numbers.
    ``clip``: clip gaussian noise to [0, 1]; None (the default) clips data in [0, 1] only, so that 0-255
    or tabular data are not wiped to [0, 1].
    """
    if isinstance(X, torch.Tensor):  # one that requires grad: numpy() refuses it; the noise reads values only
        X = X.detach().cpu().numpy()
    if looks_like_pixels(X):  # small uint8 numbers (counts, 0/1) stay numbers, as fit reads them
        noisy = add_noise(np.asarray(X) / np.float32(255), kind, factor, random_state=random_state, clip=True)
        return np.rint(noisy * 255).astype(np.uint8)
    X = np.ascontiguousarray(X, dtype=np.float32)
    if clip is None:
        clip = bool(X.size == 0 or (X.min() >= 0.0 and X.max() <= 1.0))
    g = torch.Generator().manual_seed(int(random_state))
    with COMPUTE_LOCK, torch.random.fork_rng(devices=[]):
        torch.set_rng_state(g.get_state())
        return corrupt(torch.from_numpy(X), kind, factor, clip=clip).numpy()
