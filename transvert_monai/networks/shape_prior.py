"""What a TransVert model learnt from its training vertebrae besides its weights: the mean shape per level and the volumes seen.

* **Shape prior** (issue 9): with ``shape_prior=True`` the decoder predicts a correction, in logit
  space, of the mean training shape of the vertebra's level on the view-aligned grid, so that with
  little data the model falls back to the prior instead of below it. Each level's mean occupancy
  is stored at half the target resolution (a 3 mm grid for 1.5 mm voxels: the prior is smooth;
  26 × 32³ float32 = 3.4 MB) and upsampled trilinearly. A level absent from training takes the
  prior of the nearest trained level (by position along the spine); slot 0 holds the mean over
  all training vertebrae and serves calls without a level (MONAI Deploy, ``verify_net_in_out``).
* **Volume ranges**: per level, the smallest and largest target volume (ml) among the training
  vertebrae; reconstruction flags a predicted shape outside them.

Both travel in the network's ``state_dict`` (a buffer and the module's extra state), so
``models/model.pt`` carries them and ``torch.load(weights_only=True)`` reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from transvert_monai.data.labels import VALID_VERTEBRA_LABELS, label_to_name, level_order

__all__ = ["ShapePrior", "PRIOR_SLOTS", "fit_training_statistics", "nearest_level"]

logger = logging.getLogger(__name__)

#: slot 0: every level together; slot i: VerSe index i (1–25, 28).
PRIOR_SLOTS = max(VALID_VERTEBRA_LABELS) + 1
#: probabilities are clipped to [ε, 1 − ε] before the logit, so a prior never forbids a voxel outright.
_PRIOR_EPS = 0.02


def nearest_level(level: int, available: list[int] | tuple[int, ...]) -> int:
    """The level of ``available`` nearest to ``level`` along the spine (the cranial one on a tie)."""
    if not available:
        raise ValueError("no trained level to choose from.")
    return min(available, key=lambda v: (abs(level_order(v) - level_order(level)), level_order(v)))


class ShapePrior(nn.Module):
    """Per-level mean occupancy logits on a coarse view-aligned grid (see the module docstring).

    Args:
        spatial_size: side of the network output grid; the prior is stored at ``spatial_size // 2``.
    """

    def __init__(self, spatial_size: int) -> None:
        super().__init__()
        self.spatial_size = int(spatial_size)
        coarse = max(1, self.spatial_size // 2)
        self.register_buffer("logits", torch.zeros(PRIOR_SLOTS, 1, coarse, coarse, coarse))
        self.trained_levels: list[int] = []  # set by fit(); not used by forward

    def forward(self, level: Optional[torch.Tensor], batch: int) -> torch.Tensor:
        """Prior logits ``(B, 1, S, S, S)`` of the levels ``level`` (B,) (None: slot 0 for every item)."""
        if level is None:
            coarse = self.logits[0:1].expand(batch, -1, -1, -1, -1)
        else:
            index = level.reshape(-1).long().clamp(0, self.logits.shape[0] - 1)
            coarse = self.logits.index_select(0, index.to(self.logits.device))
        size = [self.spatial_size, self.spatial_size, self.spatial_size]
        return F.interpolate(coarse, size=size, mode="trilinear", align_corners=False)

    @torch.no_grad()
    def fit(self, mean_occupancy: Mapping[int, torch.Tensor], overall: torch.Tensor) -> None:
        """Set the prior from mean training occupancies ``{level: (1, S, S, S)}`` and their overall mean.

        Levels absent from ``mean_occupancy`` take the nearest trained level's prior.

        Raises:
            ValueError: no level, or a volume of the wrong size.
        """
        if not mean_occupancy:
            raise ValueError("the shape prior needs the mean occupancy of at least one trained level.")
        levels = sorted(int(v) for v in mean_occupancy)

        def coarse_logits(p: torch.Tensor) -> torch.Tensor:
            p = torch.as_tensor(p, dtype=torch.float32).reshape(1, 1, *p.shape[-3:])
            if p.shape[-1] != self.spatial_size:
                raise ValueError(f"mean occupancy must be {self.spatial_size}³, got {tuple(p.shape[-3:])}.")
            p = F.avg_pool3d(p, kernel_size=self.spatial_size // self.logits.shape[-1])
            return torch.logit(p.clamp(_PRIOR_EPS, 1 - _PRIOR_EPS))[0]

        fitted = {v: coarse_logits(mean_occupancy[v]) for v in levels}
        self.logits[0] = coarse_logits(overall).to(self.logits.device)
        for slot in range(1, PRIOR_SLOTS):
            if slot in VALID_VERTEBRA_LABELS:
                self.logits[slot] = fitted[nearest_level(slot, levels)].to(self.logits.device)
        self.trained_levels = levels


def fit_training_statistics(
    network: nn.Module, targets: Iterable[tuple[int, torch.Tensor]], spacing_mm: float | None = None
) -> nn.Module:
    """Set ``network``'s shape prior (if it has one) and per-level volume ranges from training targets; return it.

    Args:
        network: a :class:`~transvert_monai.networks.TransVert` (a DDP wrapper is unwrapped).
        targets: ``(VerSe index, target (1, S, S, S))`` pairs in the network's target coding, e.g.
            :func:`transvert_monai.transforms.iter_vertebra_targets` over the training list.
        spacing_mm: target voxel size; default the network's sampling grid's.

    Returns:
        ``network``, updated in place.

    Raises:
        ValueError: no target.
    """
    net = getattr(network, "module", network)
    grid = net.sampling_grid
    spacing = grid.target_spacing_mm if spacing_mm is None else float(spacing_mm)
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}
    volumes: dict[int, list[float]] = {}
    for level, target in targets:
        mask = grid.to_mask(torch.as_tensor(target)[None], int(level))[0].to(torch.float32).cpu()
        level = int(level)
        sums[level] = sums.get(level, 0) + mask
        counts[level] = counts.get(level, 0) + 1
        volumes.setdefault(level, []).append(float(mask.sum()) * spacing**3 / 1000.0)
    if not counts:
        raise ValueError(
            "no training target to compute the shape statistics from; check the training data list (it is empty?)."
        )
    if getattr(net, "prior", None) is not None:
        means = {v: sums[v] / counts[v] for v in sums}
        overall = sum(sums.values()) / sum(counts.values())
        net.prior.fit(means, overall)
    net._set_volume_ranges({v: (min(vs), max(vs)) for v, vs in volumes.items()})
    logger.info(
        "training statistics of %d targets: volume ranges (ml) %s",
        sum(counts.values()),
        {label_to_name(v): (round(a, 1), round(b, 1)) for v, (a, b) in sorted(net.volume_ranges_ml.items())},
    )
    return network
