"""Appearance of a DRR patch: from raw line integrals ∫μ dl to the network's z-scored input, with a varied look.

A DRR computed by :mod:`transvert_monai.transforms.drr` is one patient's CT seen through one fixed
physics model. A real radiograph differs by its detector response, its processing curve, its
sharpness, its noise and the smooth background of soft tissue and the anode heel effect. To let the
network learn shapes rather than one rendering, :func:`drr_appearance` varies these, in the order
an image is formed, on each image (one view of one sample):

1. **Background** (soft tissue / heel effect): a linear ramp across the patch, added to the line
   integral (both are additive in ``−log`` space: overlying tissue adds to ∫μ dl, a fluence ramp
   ``I₀(x)`` adds ``log I₀(x)``). Its height is ``gradient_amplitude × std(L)`` of the patch,
   rising from 0 in the direction ``gradient_angle_rad`` (0: along the columns, π/2: along the rows).
2. **Intensity curve**: linear (``L``) or the Beer–Lambert detector response shown as a radiograph
   is displayed, bone bright: ``1 − exp(−k·L)``. ``k`` (dimensionless, per unit of line integral)
   scales every material's attenuation alike: it stands for the effective beam energy and beam
   hardening (``k = 1`` is the DRR's own ``μ_water = 0.02 /mm`` model). The bone-to-water ratio
   of ``μ`` cannot be varied once the CT is projected (the two are summed along each ray); what
   changes the relative contrast of bone and soft tissue here is the saturation of the curve and
   the gamma of step 5.
3. **Blur**: a Gaussian point-spread function of ``blur_sigma_px`` pixels (detector and focal spot
   unsharpness), separable, with replicated edges.
4. **Noise**: additive Gaussian noise of ``noise_std × std(image)`` (electronic noise) and
   signal-dependent noise of ``poisson_std × std(image) × sqrt(u)``, ``u`` the min–max normalised
   image (a Gaussian approximation of quantum noise, whose variance grows with the signal).
5. **Gamma**: the min–max normalised image raised to ``gamma`` (a display / processing curve).
   A linear contrast or brightness change is not modelled: the z-score of step 6 removes it.
6. **z-score** per image over the patch, the network's input normalisation
   (:func:`transvert_monai.transforms.sample.functional.zscore`).

With the identity setting (linear curve, gamma 1, no blur, noise or ramp) the output is the plain
z-score of the line integrals. Every parameter is one number or a tensor with one value per image
(the image tensor's leading dimensions), so one call transforms a batch of views with their own
draws.
"""

from __future__ import annotations

import math
from enum import Enum

import torch
import torch.nn.functional as F

from transvert_monai.transforms.sample.functional import zscore

__all__ = [
    "IMAGE_CHANNELS",
    "VOI_CHANNELS",
    "IntensityCurve",
    "check_line_integrals",
    "drr_appearance",
    "gaussian_blur",
    "intensity_ramp",
    "minmax_normalise",
]

#: Channels of a packed sample ``[lat, lat_voi, ap, ap_voi]`` that hold images (transformed) …
IMAGE_CHANNELS = (0, 2)
#: … and VOI annotations (0/1, passed through unchanged).
VOI_CHANNELS = (1, 3)
# a line integral below this is not a raw ∫μ dl (a z-scored patch has values near −2)
_NEGATIVE_TOLERANCE = -1e-3


class IntensityCurve(str, Enum):
    """How a line integral becomes an image intensity."""

    LINE_INTEGRAL = "line_integral"  #: L itself
    BEER_LAMBERT = "beer_lambert"  #: 1 − exp(−k·L): absorbed fraction, a radiograph displayed bone bright


ParamLike = float | bool | torch.Tensor


def _per_image(
    value: ParamLike, images: torch.Tensor, name: str, minimum: float = 0.0, strict: bool = False
) -> torch.Tensor:
    """``value`` as a float tensor of shape (..., 1, 1) broadcasting over ``images`` (..., H, W).

    Raises:
        ValueError: a value below ``minimum`` (or equal to it with ``strict``), non-finite, or of a wrong shape.
    """
    t = torch.as_tensor(value, dtype=images.dtype, device=images.device)
    lead = images.shape[:-2]
    if t.ndim and tuple(t.shape) != tuple(lead):
        raise ValueError(f"`{name}` must be one number or one per image {tuple(lead)}, got shape {tuple(t.shape)}.")
    if not bool(torch.isfinite(t).all()) or bool((t < minimum).any()) or (strict and bool((t == minimum).any())):
        bound = f"> {minimum:g}" if strict else f"≥ {minimum:g}"
        shown = t.item() if t.ndim == 0 else t.tolist()
        raise ValueError(f"`{name}` must be finite and {bound}, got {shown}.")
    return t.expand(lead).reshape(*lead, 1, 1) if lead else t.reshape(1, 1)


def check_line_integrals(images: torch.Tensor, name: str = "drr_appearance") -> None:
    """Check that ``images`` hold raw line integrals ∫μ dl: finite and not negative.

    Raises:
        ValueError: non-finite or clearly negative values (e.g. an already z-scored patch).
    """
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} expects finite line integrals, got NaN or infinite values.")
    low = float(images.min()) if images.numel() else 0.0
    if low < _NEGATIVE_TOLERANCE:
        raise ValueError(
            f"{name} expects raw DRR line integrals ∫μ dl ≥ 0 in the image channels, got a minimum of {low:.3g}; "
            "the patch looks normalised already: extract samples without z-scoring (this transform z-scores)."
        )


def minmax_normalise(images: torch.Tensor) -> torch.Tensor:
    """Each image (..., H, W) scaled to [0, 1] over its patch; a constant image becomes zeros."""
    low = images.amin(dim=(-2, -1), keepdim=True)
    span = images.amax(dim=(-2, -1), keepdim=True) - low
    scaled = (images - low) / span.clamp_min(torch.finfo(images.dtype).tiny)
    return torch.where(span > 0, scaled, torch.zeros_like(images))


def intensity_ramp(shape: tuple[int, int], angle_rad: torch.Tensor) -> torch.Tensor:
    """Linear ramps from 0 to 1 across an (H, W) patch, rising in the direction ``angle_rad``.

    Args:
        shape: (H, W) of the patch.
        angle_rad: (..., 1, 1) directions; 0 rises along the columns (left → right), π/2 along the rows
            (top → bottom).

    Returns:
        (..., H, W) ramps on ``angle_rad``'s device and dtype, minimum 0 and maximum 1 at opposite edges or corners.
    """
    h, w = shape
    rows = torch.linspace(-1.0, 1.0, h, dtype=angle_rad.dtype, device=angle_rad.device)[:, None]
    cols = torch.linspace(-1.0, 1.0, w, dtype=angle_rad.dtype, device=angle_rad.device)[None, :]
    cos, sin = torch.cos(angle_rad), torch.sin(angle_rad)
    ramp = (cos * cols + sin * rows) / (cos.abs() + sin.abs())  # in [−1, 1] for any direction
    return (ramp + 1.0) / 2.0


def gaussian_blur(images: torch.Tensor, sigma_px: torch.Tensor) -> torch.Tensor:
    """Blur each image (..., H, W) by a Gaussian of its own standard deviation (pixels), edges replicated.

    One separable pass of grouped 1D convolutions (kernel radius ``ceil(3 σ_max)``); ``σ = 0`` leaves
    that image unchanged.

    Args:
        images: (..., H, W) float images.
        sigma_px: (..., 1, 1) standard deviations in pixels, ≥ 0.
    """
    sigma = sigma_px.reshape(-1)
    sigma_max = float(sigma.max()) if sigma.numel() else 0.0
    if sigma_max <= 0:
        return images
    shape = images.shape
    flat = images.reshape(1, -1, shape[-2], shape[-1])
    n = flat.shape[1]
    sigma = sigma.expand(n) if sigma.numel() == 1 else sigma
    radius = max(1, math.ceil(3.0 * sigma_max))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    s = sigma[:, None].clamp_min(1e-6)
    kernel = torch.where(sigma[:, None] > 0, torch.exp(-0.5 * (x / s) ** 2), (x == 0).to(images.dtype).expand(n, -1))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    out = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=n)
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), kernel[:, None, :, None], groups=n)
    return out.reshape(shape)


def drr_appearance(
    images: torch.Tensor,
    beer_lambert: ParamLike = False,
    attenuation_k: ParamLike = 1.0,
    gamma: ParamLike = 1.0,
    blur_sigma_px: ParamLike = 0.0,
    noise_std: ParamLike = 0.0,
    poisson_std: ParamLike = 0.0,
    gradient_amplitude: ParamLike = 0.0,
    gradient_angle_rad: ParamLike = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Give raw DRR line integrals a radiograph's appearance and z-score them (steps in the module docstring).

    Args:
        images: (..., H, W) raw line integrals ∫μ dl (dimensionless, ≥ 0), e.g. (B, 2, P, P) lateral and AP.
        beer_lambert: per image, use the curve ``1 − exp(−k·L)`` instead of ``L``.
        attenuation_k: ``k`` of that curve (> 0, per unit of line integral; 1 is the DRR's own attenuation).
        gamma: exponent applied to the min–max normalised image (> 0; 1: none).
        blur_sigma_px: Gaussian blur standard deviation in pixels (≥ 0; 0: none).
        noise_std: additive Gaussian noise standard deviation, as a fraction of the image's std (≥ 0).
        poisson_std: signal-dependent noise standard deviation at the brightest pixel, as a fraction of
            the image's std (≥ 0).
        gradient_amplitude: height of the linear background ramp, as a fraction of the line integrals'
            std over the patch (≥ 0; 0: none).
        gradient_angle_rad: direction the ramp rises in (radians; 0 along the columns, π/2 along the rows).
        generator: random generator on ``images``' device for the noise (default: torch's global one).

    Returns:
        (..., H, W) float tensor on ``images``' device, each image with zero mean and unit std over its patch.

    Raises:
        ValueError: a parameter out of range or of the wrong shape, or images that are not raw line
            integrals (negative or non-finite values).

    Example:
        >>> x = drr_appearance(line_integrals, beer_lambert=True, attenuation_k=0.3, blur_sigma_px=0.7)
    """
    if images.ndim < 2:
        raise ValueError(f"drr_appearance expects images (..., H, W), got shape {tuple(images.shape)}.")
    images = images.to(torch.float32) if not torch.is_floating_point(images) else images
    check_line_integrals(images)
    use_curve = _per_image(beer_lambert, images, "beer_lambert") > 0
    k = _per_image(attenuation_k, images, "attenuation_k", strict=True)
    gam = _per_image(gamma, images, "gamma", strict=True)
    sigma = _per_image(blur_sigma_px, images, "blur_sigma_px")
    noise = _per_image(noise_std, images, "noise_std")
    poisson = _per_image(poisson_std, images, "poisson_std")
    amplitude = _per_image(gradient_amplitude, images, "gradient_amplitude")
    angle = _per_image(gradient_angle_rad, images, "gradient_angle_rad", minimum=-math.inf)

    out = images
    if bool((amplitude > 0).any()):  # 1. smooth background, additive in line-integral space
        spread = images.std(dim=(-2, -1), keepdim=True, unbiased=False)
        out = out + amplitude * spread * intensity_ramp(tuple(images.shape[-2:]), angle)
    if bool(use_curve.any()):  # 2. detector response, bone bright
        out = torch.where(use_curve, -torch.expm1(-k * out), out)
    out = gaussian_blur(out, sigma)  # 3. unsharpness
    if bool((noise > 0).any()) or bool((poisson > 0).any()):  # 4. electronic and quantum noise
        spread = out.std(dim=(-2, -1), keepdim=True, unbiased=False)
        shape, dev = out.shape, out.device
        gauss = torch.randn(shape, generator=generator, device=dev, dtype=out.dtype)
        signal = torch.randn(shape, generator=generator, device=dev, dtype=out.dtype)
        out = out + spread * (noise * gauss + poisson * minmax_normalise(out).sqrt() * signal)
    if bool((gam != 1).any()):  # 5. display curve
        out = minmax_normalise(out).clamp(0.0, 1.0) ** gam
    return zscore(out)  # 6. the network's normalisation
