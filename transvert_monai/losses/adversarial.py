"""TransVert's training losses: L1 regression plus least-squares GAN terms (paper §2.1, Eq. 2–3), and overlap terms.

With the default occupancy coding (:class:`~transvert_monai.geometry.TargetCoding`) the generator
outputs logits: the L1 term compares their sigmoid with the 0/1 target, and two optional overlap
terms act on the logits, a soft Dice loss (MONAI ``DiceLoss(sigmoid=True)``, per sample) and a
binary cross-entropy. Measured in issue 9: a binary target learnt with L1 alone sits on an
all-background plateau for hundreds of iterations; an overlap term leaves it at once. With the
paper's index coding the L1 term regresses the raw output against ``{0, i}`` and the overlap terms
are not defined.

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
from monai.losses import DiceLoss, PatchAdversarialLoss
from monai.utils import LossReduction, look_up_option

from transvert_monai.geometry import TargetCoding
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
    """Generator loss ``L_G = α_G·‖y − p‖₁ + α_Dice·Dice + α_BCE·BCE + α_D·(D(p) − 1)²`` (paper Eq. 2 plus overlap terms).

    ``p`` is the sigmoid of the output logits (occupancy coding) or the output itself (index coding,
    the paper's). ``‖·‖₁`` is the mean absolute error over voxels (``"mean"``), which makes
    ``α_G = 10`` and ``α_D = 0.1`` independent of the patch size. Without discriminator outputs the
    adversarial term is left out (Table 1 row "TransVert + Self Attn."). The discriminator outputs
    must be computed on ``p`` (the trainer's ``discriminator_input``).

    Args:
        alpha_g: weight ``α_G`` of the L1 term, non-negative. Defaults to 10 (paper).
        alpha_d: weight ``α_D`` of the adversarial term, non-negative. Defaults to 0.1 (paper).
        target_coding: ``"occupancy"`` (logits against 0/1, default) or ``"index"`` (the paper's ``{0, i}``).
        dice_weight: weight of the soft Dice loss on the logits (occupancy only). Defaults to 0.
        bce_weight: weight of the binary cross-entropy on the logits (occupancy only). Defaults to 0.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample, see the module docstring); the
            Dice term is a per-sample mean in every case.

    Raises:
        ValueError: a negative weight, an unknown coding or reduction, overlap terms with the index coding.

    Example::

        >>> loss = TransVertGeneratorLoss(target_coding="index")
        >>> pred, target = torch.zeros(2, 1, 8, 8, 8), torch.ones(2, 1, 8, 8, 8)
        >>> loss(pred, target, torch.ones(2, 1, 2, 2, 2))  # 10 · 1 + 0.1 · 0
        tensor(10.)
    """

    def __init__(
        self,
        alpha_g: float = 10.0,
        alpha_d: float = 0.1,
        target_coding: TargetCoding | str = TargetCoding.OCCUPANCY,
        dice_weight: float = 0.0,
        bce_weight: float = 0.0,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=reduction)
        weights = {"alpha_g": alpha_g, "alpha_d": alpha_d, "dice_weight": dice_weight, "bce_weight": bce_weight}
        negative = {k: v for k, v in weights.items() if not v >= 0}
        if negative:
            raise ValueError(f"loss weights must be non-negative, got {negative}.")
        self.target_coding = look_up_option(target_coding, TargetCoding)
        if self.target_coding == TargetCoding.INDEX and (dice_weight or bce_weight):
            raise ValueError(
                "the Dice and BCE terms act on occupancy logits; with target_coding='index' set dice_weight and "
                "bce_weight to 0."
            )
        self.alpha_g, self.alpha_d = float(alpha_g), float(alpha_d)
        self.dice_weight, self.bce_weight = float(dice_weight), float(bce_weight)
        self.dice = DiceLoss(sigmoid=True, reduction="none")

    def _reduce(self, x: torch.Tensor) -> torch.Tensor:
        if self.reduction == LossReduction.MEAN.value:
            return x.mean()
        if self.reduction == LossReduction.SUM.value:
            return x.sum()
        return _per_sample_mean(x)

    def forward(  # type: ignore[override]
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        fake_outputs: torch.Tensor | list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Compute ``L_G``.

        Args:
            input: network output ``(B, 1, H, W, D)``: logits (occupancy) or the regression (index).
            target: target ``y``, same shape: 0/1 (occupancy) or 0 and the VerSe index (index).
            fake_outputs: discriminator output(s) on ``p`` (not detached), a ``(B, 1, h, w, d)`` patch
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
        occupancy = self.target_coding == TargetCoding.OCCUPANCY
        p = torch.sigmoid(input) if occupancy else input
        loss = self.alpha_g * self._reduce((p - target).abs())
        if occupancy and self.bce_weight:
            loss = loss + self.bce_weight * self._reduce(F.binary_cross_entropy_with_logits(input, target, reduction="none"))
        if occupancy and self.dice_weight:
            dice = self.dice(input, target).reshape(input.shape[0])
            loss = loss + self.dice_weight * (dice if self.reduction == LossReduction.NONE.value else dice.mean())
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
