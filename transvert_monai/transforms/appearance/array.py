"""Appearance transforms on a packed sample: :class:`DRRAppearance` (fixed) and :class:`RandDRRAppearance` (drawn).

A packed sample is ``(4, P, P)`` or a batch ``(B, 4, P, P)`` of ``[lat, lat_voi, ap, ap_voi]``
(see :mod:`transvert_monai.transforms.sample`): channels 0 and 2 hold raw line integrals ∫μ dl and
become the network's input (:func:`~transvert_monai.transforms.appearance.functional.drr_appearance`,
z-scored per patch); channels 1 and 3, the VOI annotations, are passed through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import RandomizableTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor, look_up_option

from transvert_monai.transforms.appearance.functional import IMAGE_CHANNELS, IntensityCurve, drr_appearance

__all__ = ["DRRAppearance", "RandDRRAppearance", "apply_to_packed", "check_range"]

_PARAMETERS = (
    "beer_lambert",
    "attenuation_k",
    "gamma",
    "blur_sigma_px",
    "noise_std",
    "poisson_std",
    "gradient_amplitude",
    "gradient_angle_rad",
)


def check_range(value: Sequence[float] | None, name: str, positive: bool = False) -> tuple[float, float] | None:
    """A ``(low, high)`` range with ``0 ≤ low ≤ high`` (``0 < low`` with ``positive``), or ``None`` (switched off).

    Raises:
        ValueError: not two finite numbers, inverted, or below the bound.
    """
    if value is None:
        return None
    pair = tuple(float(v) for v in value)
    if len(pair) != 2 or not all(math.isfinite(v) for v in pair):
        raise ValueError(f"`{name}` must be two finite numbers (low, high) or None, got {value!r}.")
    if pair[0] > pair[1]:
        raise ValueError(f"`{name}` is inverted: low {pair[0]:g} > high {pair[1]:g}.")
    if pair[0] < 0 or (positive and pair[0] == 0):
        raise ValueError(f"`{name}` must be {'positive' if positive else 'non-negative'}, got {value!r}.")
    return pair  # type: ignore[return-value]


def _check_probability(value: float, name: str) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"`{name}` must be a probability in [0, 1], got {value!r}.")
    return float(value)


def apply_to_packed(
    img: NdarrayOrTensor, params: dict[str, Any], generator: torch.Generator | None = None
) -> NdarrayOrTensor:
    """Apply :func:`drr_appearance` with ``params`` to the image channels of a packed sample; VOI channels unchanged.

    Args:
        img: (4, P, P) or (B, 4, P, P) ``[lat, lat_voi, ap, ap_voi]``, image channels raw line integrals.
        params: keyword arguments of :func:`drr_appearance`; tensors shaped like the images' leading
            dimensions ((2,) or (B, 2): one value per view).
        generator: random generator for the noise, on the input's device.

    Returns:
        float32, the input's type and device (a MetaTensor keeps its meta while meta tracking is on).

    Raises:
        ValueError: not a packed sample; see :func:`drr_appearance`.
    """
    data = convert_to_tensor(img, track_meta=False)
    if not (data.ndim in (3, 4) and data.shape[-3] == 4):
        raise ValueError(
            "DRRAppearance expects a packed sample (4, P, P) or a batch (B, 4, P, P) of [lat, lat_voi, ap, ap_voi], "
            f"got shape {tuple(data.shape)}."
        )
    data = data.to(torch.float32)
    out = data.clone()
    channels = list(IMAGE_CHANNELS)
    out[..., channels, :, :] = drr_appearance(data[..., channels, :, :], generator=generator, **params)
    if isinstance(img, MetaTensor):
        return convert_to_dst_type(out, img)[0] if get_track_meta() else out
    return convert_to_dst_type(out, img, dtype=torch.float32)[0] if isinstance(img, np.ndarray) else out


class DRRAppearance(Transform):
    """Turn a packed sample's raw line integrals into the network input with a fixed appearance.

    See :mod:`transvert_monai.transforms.appearance.functional` for the steps. The default
    (linear curve, gamma 1, no blur, noise or ramp) is the plain per-patch z-score. Noise, when
    set, is drawn from torch's global generator (use :class:`RandDRRAppearance` for seeded noise).

    Args:
        curve: ``"line_integral"`` (L) or ``"beer_lambert"`` (``1 − exp(−k·L)``, bone bright).
        attenuation_k: ``k`` of the Beer–Lambert curve (> 0; dimensionless, per unit of line integral).
        gamma: exponent on the min–max normalised patch (> 0).
        blur_sigma_px: Gaussian blur, standard deviation in pixels (≥ 0).
        noise_std: additive Gaussian noise, fraction of the patch's std (≥ 0).
        poisson_std: signal-dependent noise at the brightest pixel, fraction of the patch's std (≥ 0).
        gradient_amplitude: background ramp height, fraction of the line integrals' std (≥ 0).
        gradient_angle_rad: direction the ramp rises in (0: along the columns).

    Raises:
        ValueError: a bad curve name or a parameter out of range.

    Example:
        >>> x = DRRAppearance(curve="beer_lambert", attenuation_k=0.3, blur_sigma_px=0.8)(sample["image"])
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        curve: IntensityCurve | str = IntensityCurve.LINE_INTEGRAL,
        attenuation_k: float = 0.3,
        gamma: float = 1.0,
        blur_sigma_px: float = 0.0,
        noise_std: float = 0.0,
        poisson_std: float = 0.0,
        gradient_amplitude: float = 0.0,
        gradient_angle_rad: float = 0.0,
    ) -> None:
        self.curve = look_up_option(curve, IntensityCurve)
        for name, value, positive in (
            ("attenuation_k", attenuation_k, True),
            ("gamma", gamma, True),
            ("blur_sigma_px", blur_sigma_px, False),
            ("noise_std", noise_std, False),
            ("poisson_std", poisson_std, False),
            ("gradient_amplitude", gradient_amplitude, False),
        ):
            if not (math.isfinite(value) and (value > 0 if positive else value >= 0)):
                bound = "positive" if positive else "non-negative"
                raise ValueError(f"`{name}` must be finite and {bound}, got {value!r}.")
        if not math.isfinite(gradient_angle_rad):
            raise ValueError(f"`gradient_angle_rad` must be finite, got {gradient_angle_rad!r}.")
        self.params: dict[str, Any] = {
            "beer_lambert": self.curve == IntensityCurve.BEER_LAMBERT,
            "attenuation_k": float(attenuation_k),
            "gamma": float(gamma),
            "blur_sigma_px": float(blur_sigma_px),
            "noise_std": float(noise_std),
            "poisson_std": float(poisson_std),
            "gradient_amplitude": float(gradient_amplitude),
            "gradient_angle_rad": float(gradient_angle_rad),
        }

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Transform a packed sample (4, P, P) or (B, 4, P, P); see :func:`apply_to_packed`.

        Raises:
            ValueError: not a packed sample, or image channels that are not raw line integrals.
        """
        return apply_to_packed(img, self.params)


class RandDRRAppearance(RandomizableTransform):
    """:class:`DRRAppearance` with parameters drawn per call, per sample and (by default) per view.

    The lateral and AP radiographs are separate exposures, so by default each view draws its own
    parameters (``independent_views=False`` shares them); each sample of a batch draws its own
    (``independent_samples=False``: one draw for the batch, as one radiograph pair shows every
    vertebra alike). A sample is perturbed with probability ``prob``; one that is not still gets
    the plain z-score. Every draw comes from ``self.R``; the noise from a torch generator seeded by
    it. A range of ``None`` switches its variation off. Defaults (moderate; detector pixels of 1.8 mm):

    * ``beer_lambert_prob=0.5``, ``attenuation_k_range=(0.1, 0.5)``: half the images through
      ``1 − exp(−k·L)`` with ``k·L`` of about 0.5–5 over typical line integrals 0–10, from nearly
      linear to strongly saturated in thick regions;
    * ``gamma_range=(0.75, 1.33)``, log-uniform (symmetric about 1);
    * ``blur_sigma_range_px=(0.0, 1.0)``: up to a 1.8 mm standard deviation of unsharpness;
    * ``noise_std_range=(0.0, 0.05)`` and ``poisson_std_range=(0.0, 0.05)``: up to 5 % of the
      patch's spread, a visible but not dominant grain;
    * ``gradient_range=(0.0, 0.25)``: a ramp up to a quarter of the line integrals' std, in a
      direction uniform in [0, 2π).

    Args:
        beer_lambert_prob: probability of the Beer–Lambert curve for an image (0 switches it off).
        attenuation_k_range: range of ``k``, uniform (> 0).
        gamma_range: range of gamma, log-uniform (> 0), or None.
        blur_sigma_range_px: range of the blur sigma in pixels, uniform (≥ 0), or None.
        noise_std_range: range of the additive noise (fraction of the patch's std), or None.
        poisson_std_range: range of the signal-dependent noise, or None.
        gradient_range: range of the ramp height (fraction of the line integrals' std), or None.
        independent_views: draw the lateral and AP parameters separately.
        independent_samples: draw each sample of a batch separately.
        prob: probability of perturbing a sample.

    Raises:
        ValueError: inverted or negative ranges, ``prob`` or ``beer_lambert_prob`` outside [0, 1].

    Example:
        >>> aug = RandDRRAppearance(prob=0.8).set_random_state(seed=0)
        >>> x = aug(sample["image"])  # (B, 4, 64, 64), image channels z-scored
    """

    backend = DRRAppearance.backend

    def __init__(
        self,
        beer_lambert_prob: float = 0.5,
        attenuation_k_range: Sequence[float] = (0.1, 0.5),
        gamma_range: Sequence[float] | None = (0.75, 1.33),
        blur_sigma_range_px: Sequence[float] | None = (0.0, 1.0),
        noise_std_range: Sequence[float] | None = (0.0, 0.05),
        poisson_std_range: Sequence[float] | None = (0.0, 0.05),
        gradient_range: Sequence[float] | None = (0.0, 0.25),
        independent_views: bool = True,
        independent_samples: bool = True,
        prob: float = 1.0,
    ) -> None:
        RandomizableTransform.__init__(self, _check_probability(prob, "prob"))
        self.beer_lambert_prob = _check_probability(beer_lambert_prob, "beer_lambert_prob")
        self.attenuation_k_range = check_range(attenuation_k_range, "attenuation_k_range", positive=True)
        if self.attenuation_k_range is None:
            raise ValueError(
                "`attenuation_k_range` must be two positive numbers; use `beer_lambert_prob=0` to switch the curve off."
            )
        self.gamma_range = check_range(gamma_range, "gamma_range", positive=True)
        self.blur_sigma_range_px = check_range(blur_sigma_range_px, "blur_sigma_range_px")
        self.noise_std_range = check_range(noise_std_range, "noise_std_range")
        self.poisson_std_range = check_range(poisson_std_range, "poisson_std_range")
        self.gradient_range = check_range(gradient_range, "gradient_range")
        self.independent_views = bool(independent_views)
        self.independent_samples = bool(independent_samples)
        self.params: dict[str, Any] = {}
        self.noise_seed = 0

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandDRRAppearance:
        super().set_random_state(seed, state)
        return self

    def _uniform(self, bounds: tuple[float, float] | None, shape: tuple[int, int], identity: float) -> np.ndarray:
        if bounds is None:
            return np.full(shape, identity)
        return self.R.uniform(bounds[0], bounds[1], size=shape)

    def randomize(self, data: Any = None, batch_size: int | None = None) -> None:
        """Draw the parameters of this call for ``batch_size`` samples (None: one unbatched sample).

        Stores them in ``self.params`` (arrays (2,) or (B, 2), one value per view) and the noise seed in
        ``self.noise_seed``; samples not perturbed get the identity setting.
        """
        n = 1 if batch_size is None else int(batch_size)
        apply = self.R.rand(n) < self.prob
        self._do_transform = bool(apply.any())
        shape = (n if self.independent_samples else 1, 2 if self.independent_views else 1)
        gamma = np.exp(self._uniform(None if self.gamma_range is None else tuple(np.log(self.gamma_range)), shape, 0.0))
        draws = {
            "beer_lambert": self.R.rand(*shape) < self.beer_lambert_prob,
            "attenuation_k": self.R.uniform(*self.attenuation_k_range, size=shape),  # type: ignore[misc]
            "gamma": gamma,
            "blur_sigma_px": self._uniform(self.blur_sigma_range_px, shape, 0.0),
            "noise_std": self._uniform(self.noise_std_range, shape, 0.0),
            "poisson_std": self._uniform(self.poisson_std_range, shape, 0.0),
            "gradient_amplitude": self._uniform(self.gradient_range, shape, 0.0),
            "gradient_angle_rad": self.R.uniform(0.0, 2.0 * math.pi, size=shape),
        }
        identity = DRRAppearance().params
        self.params = {}
        for name in _PARAMETERS:
            value = np.broadcast_to(draws[name], (n, 2))
            value = np.where(apply[:, None], value, identity[name])
            self.params[name] = value if batch_size is not None else value[0]
        self.noise_seed = int(self.R.randint(0, 2**31 - 1))

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """Transform a packed sample (4, P, P) or (B, 4, P, P) with newly drawn (or the last) parameters.

        Raises:
            ValueError: not a packed sample, image channels that are not raw line integrals, or (with
                ``randomize=False``) a batch size other than the last draw's.
        """
        batch = int(img.shape[0]) if len(img.shape) == 4 else None
        if randomize or not self.params:
            self.randomize(None, batch)
        expected = (batch, 2) if batch is not None else (2,)
        if np.shape(self.params["gamma"]) != expected:
            raise ValueError(
                f"RandDRRAppearance's parameters were drawn for shape {np.shape(self.params['gamma'])} "
                "(samples, views), "
                f"not {expected}; call it with randomize=True for this input."
            )
        device = img.device if isinstance(img, torch.Tensor) else torch.device("cpu")
        generator = torch.Generator(device=device).manual_seed(self.noise_seed)
        params = {k: torch.as_tensor(np.asarray(v, dtype=np.float32), device=device) for k, v in self.params.items()}
        return apply_to_packed(img, params, generator)
