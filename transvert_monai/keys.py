"""Dictionary keys shared by the package, the bundle configs and the tests.

A bundle config refers to these strings as top-level scalars (``"ct_key": "ct"``), so a user who
renames a key does so in one place.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["TransVertKeys"]


class TransVertKeys(str, Enum):
    """Names of the items in a TransVert data dictionary and of the meta-data entries it adds."""

    # inputs from a data list
    CASE = "case"  #: case (patient) identifier
    CT = "ct"  #: CT volume in HU, channel-first MetaTensor (1, X, Y, Z)
    MASK = "mask"  #: vertebra label map (VerSe indices 1–25), same grid as the CT
    CENTROIDS = "centroids"  #: {VerSe index: world RAS mm} vertebral centroids
    VERTEBRAE = "vertebrae"  #: the VerSe indices of a case used by one data-list entry
    VERTEBRA = "vertebra"  #: VerSe index of the vertebra of one sample
    CENTROID = "centroid"  #: world RAS mm centroid of the vertebra of one sample

    # per-view items
    LATERAL = "lateral"  #: lateral DRR / radiograph (patch)
    AP = "ap"  #: anterior–posterior DRR / radiograph (patch)
    LATERAL_VOI = "lateral_voi"  #: VOI annotation on the lateral image
    AP_VOI = "ap_voi"  #: VOI annotation on the AP image

    # network input / target / output
    IMAGE = "image"  #: packed network input (4, H, W): [lat, lat_voi, ap, ap_voi]
    LABEL = "label"  #: 3D target (1, 64, 64, 64), values 0 or the VerSe index
    PRED = "pred"  #: network output, same layout as LABEL

    # meta-data entries (in ``MetaTensor.meta``)
    GEOMETRY = "projection_geometry"  #: ProjectionGeometry of a rendered view, as a dict
    LATERAL_GEOMETRY = "lateral_geometry"  #: the lateral view of a sample, as a dict
    AP_GEOMETRY = "ap_geometry"  #: the AP view of a sample, as a dict
    PATCH_ORIGIN_PX = "patch_origin_px"  #: top-left detector pixel (row, col) of a patch (per view)
    CENTROID_PX = "centroid_px"  #: the vertebra's centroid (row, col) in the detector pixels (per view)
    POSE = "pose"  #: random C-arm pose offsets drawn for a sample

    def __str__(self) -> str:
        return self.value
