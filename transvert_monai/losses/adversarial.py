"""TransVert's training losses: L1 regression plus least-squares GAN terms (paper §2.1, Eq. 2–3).

The adversarial terms reuse :class:`monai.losses.PatchAdversarialLoss` with
``criterion="least_squares"`` and ``no_activation_leastsq=True`` (Mao et al., ICCV 2017): a plain
squared error against 1 (real) or 0 (fake) on the raw discriminator output. Without that flag MONAI
puts a LeakyReLU in front, which is not the paper's LSGAN.

Reductions (same for both losses):

* ``"mean"`` (default): every term is averaged over its elements (voxels for L1, patches for the
  discriminator map); for a list of discriminator outputs (multi-scale D) the per-output means are
  averaged again, as ``PatchAdversarialLoss`` does.
* ``"sum"``: every term is summed over its elements and over the list of outputs.
* ``"none"``: one value per sample, shape ``(B,)``: the ``"mean"`` formula without averaging over
  the batch (the L1 map and the patch map have different shapes, so an element-wise result is
  not defined).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import PatchAdversarialLoss
from monai.utils import LossReduction, look_up_option
from torch.nn.modules.loss import _Loss

__all__ = ["TransVertGeneratorLoss", "TransVertDiscriminatorLoss"]


def _as_list(outputs: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _per_sample_mean(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).mean(dim=1)


class _LeastSquaresTerms(_Loss):
    """Shared LSGAN machinery: ``(D − 1)²`` and ``D²`` terms with this package's reductions."""

    def __init__(self, reduction: LossReduction | str = LossReduction.MEAN) -> None:
        reduction = look_up_option(reduction, LossReduction)
        super().__init__(reduction=reduction.value)
        # "none" is reduced per sample here; MONAI's loss returns the element-wise list for it
        self.adversarial = PatchAdversarialLoss(
            reduction=reduction, criterion="least_squares", no_activation_leastsq=True
        )

    def _least_squares(
        self, outputs: torch.Tensor | list[torch.Tensor], target_is_real: bool, for_discriminator: bool
    ) -> torch.Tensor:
        outputs = _as_list(outputs)
        loss = self.adversarial(outputs, target_is_real=target_is_real, for_discriminator=for_discriminator)
        if self.reduction == LossReduction.NONE.value:
            return torch.stack([_per_sample_mean(term) for term in loss]).mean(dim=0)
        return loss  # type: ignore[return-value]


class TransVertGeneratorLoss(_LeastSquaresTerms):
    """Generator loss ``L_G = α_G·‖y − G(x)‖₁ + α_D·(D(G(x)) − 1)²`` (Bayat et al., MICCAI 2020, Eq. 2).

    ``‖·‖₁`` is the mean absolute error over voxels (``"mean"``), which makes ``α_G = 10`` and
    ``α_D = 0.1`` independent of the patch size. Without discriminator outputs only the weighted L1
    term is returned (training without the adversarial component, Table 1 row "TransVert + Self Attn.").

    Args:
        alpha_g: weight ``α_G`` of the L1 term, non-negative. Defaults to 10 (paper).
        alpha_d: weight ``α_D`` of the adversarial term, non-negative. Defaults to 0.1 (paper).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample, see the module docstring).

    Raises:
        ValueError: on a negative weight or an unknown reduction.

    Example::

        >>> loss = TransVertGeneratorLoss()
        >>> pred, target = torch.zeros(2, 1, 8, 8, 8), torch.ones(2, 1, 8, 8, 8)
        >>> loss(pred, target, torch.ones(2, 1, 2, 2, 2))  # 10 · 1 + 0.1 · 0
        tensor(10.)
    """

    def __init__(
        self, alpha_g: float = 10.0, alpha_d: float = 0.1, reduction: LossReduction | str = LossReduction.MEAN
    ) -> None:
        super().__init__(reduction=reduction)
        if alpha_g < 0 or alpha_d < 0:
            raise ValueError(f"`alpha_g` and `alpha_d` must be non-negative, got alpha_g={alpha_g}, alpha_d={alpha_d}.")
        self.alpha_g = float(alpha_g)
        self.alpha_d = float(alpha_d)

    def forward(  # type: ignore[override]
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        fake_outputs: torch.Tensor | list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Compute ``L_G``.

        Args:
            input: prediction ``G(x)``, ``(B, 1, H, W, D)``.
            target: target ``y``, same shape, values 0 or the VerSe index.
            fake_outputs: discriminator output(s) on ``G(x)`` (not detached), a ``(B, 1, h, w, d)`` patch
                map or a list of them; ``None`` leaves out the adversarial term.

        Returns:
            a scalar, or ``(B,)`` with ``reduction="none"``.

        Raises:
            ValueError: when ``input`` and ``target`` shapes differ.
        """
        if input.shape != target.shape:
            raise ValueError(
                f"TransVertGeneratorLoss needs prediction and target of the same shape, got {tuple(input.shape)} "
                f"and {tuple(target.shape)}."
            )
        l1 = (input - target).abs()
        if self.reduction == LossReduction.MEAN.value:
            loss = self.alpha_g * l1.mean()
        elif self.reduction == LossReduction.SUM.value:
            loss = self.alpha_g * l1.sum()
        else:
            loss = self.alpha_g * _per_sample_mean(l1)
        if fake_outputs is None:
            return loss
        return loss + self.alpha_d * self._least_squares(fake_outputs, target_is_real=True, for_discriminator=False)


class TransVertDiscriminatorLoss(_LeastSquaresTerms):
    """Discriminator loss ``L_D = (D(y) − 1)² + D(G(x))²`` (Bayat et al., MICCAI 2020, Eq. 3).

    The two terms are added as written in the paper (no ½ factor).

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample, see the module docstring).

    Raises:
        ValueError: on an unknown reduction.

    Example::

        >>> TransVertDiscriminatorLoss()(torch.ones(2, 1, 2, 2, 2), torch.zeros(2, 1, 2, 2, 2))
        tensor(0.)
    """

    def forward(  # type: ignore[override]
        self, real_outputs: torch.Tensor | list[torch.Tensor], fake_outputs: torch.Tensor | list[torch.Tensor]
    ) -> torch.Tensor:
        """Compute ``L_D``.

        Args:
            real_outputs: discriminator output(s) on the target ``y``: ``(B, 1, h, w, d)`` or a list.
            fake_outputs: discriminator output(s) on the detached prediction ``G(x)``, same layout.

        Returns:
            a scalar, or ``(B,)`` with ``reduction="none"``.
        """
        real = self._least_squares(real_outputs, target_is_real=True, for_discriminator=True)
        fake = self._least_squares(fake_outputs, target_is_real=False, for_discriminator=True)
        return real + fake
