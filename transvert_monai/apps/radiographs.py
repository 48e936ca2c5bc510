"""DRR "radiographs" of a CT with known geometry and centroids: inputs for ``transvert-reconstruct``.

Renders a lateral and an AP view of a CT (cone beam, isocentre at the CT grid centre unless
given) at a fine detector pixel spacing, and writes what a user of real radiographs would have:

* ``lateral.nii.gz`` / ``ap.nii.gz`` with ``lateral.json`` / ``ap.json`` geometry side-cars
  (pixel spacing at the detector, source-to-detector and source-to-patient distances);
* ``centroids.json``: per view, every vertebra's projected 3D centroid in the files' pixels,
  by level name, perturbed by annotation noise (:data:`ANNOTATION_NOISE_MM`) unless asked otherwise.

The default detector is a 17-inch (432 mm) wide long-cassette format, 1100 × 720 pixels of 0.6 mm
(660 × 432 mm): it holds the example's whole body width at magnification 1.2, so no vertebra's patch
runs past the image border, as on a real full-spine radiograph.

The reconstruction's world is the radiographs' patient frame (origin at the isocentre), so the true
3D centres there are the CT centroids minus the isocentre; :func:`write_example_radiographs` returns
them for checks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ANNOTATION_NOISE_MM", "DETECTOR_SIZE_PX", "write_example_radiographs"]

#: Standard deviation (mm at the detector, per image coordinate) of the noise the example adds to its 2D centroids:
#: manual placement of a vertebral-body centre on a radiograph varies by about 1–2 mm between readers (the body's
#: edges are blurred by the projection; a centre is judged, not measured), so 1.5 mm per coordinate, ~1.9 mm mean
#: 2D distance, is a realistic reader.
ANNOTATION_NOISE_MM = 1.5
#: (rows, cols) of the example detector: 660 × 432 mm at 0.6 mm (a 17-inch long-cassette width).
DETECTOR_SIZE_PX = (1100, 720)


def write_example_radiographs(
    ct: Any,
    centroids_mm: Mapping[int, torch.Tensor],
    folder: str | Path,
    detector_size_px: Sequence[int] = DETECTOR_SIZE_PX,
    detector_spacing_mm: float = 0.6,
    source_to_detector_mm: float = 1800.0,
    source_to_isocentre_mm: float = 1500.0,
    isocentre_mm: Sequence[float] | None = None,
    centroid_noise_mm: float = 0.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Render and write the radiograph pair of ``ct`` with the projected ``centroids_mm``.

    Args:
        ct: MetaTensor (1, X, Y, Z) in HU.
        centroids_mm: {VerSe index: world (3,)} of the vertebrae to annotate.
        folder: where the files go (created).
        detector_size_px, detector_spacing_mm, source_to_detector_mm, source_to_isocentre_mm: the views.
        isocentre_mm: world isocentre (default the CT grid centre).
        centroid_noise_mm: standard deviation (mm at the detector, per coordinate) of Gaussian noise added to the
            2D centroids, as a human annotation has (:data:`ANNOTATION_NOISE_MM` is a realistic value); 0 writes the
            exact projections.
        seed: seed of that noise.

    Returns:
        ``{"lateral", "ap", "centroids", "geometries", "isocentre_mm", "true_centres_mm"}``: the file
        paths, the views, the isocentre and the true centres in the radiographs' patient frame.
    """
    import nibabel as nib

    from transvert_monai.data.atomic import atomic_write, write_json_atomic
    from transvert_monai.data.labels import label_to_name
    from transvert_monai.geometry import grid_centre_mm
    from transvert_monai.transforms.drr import RenderDRR

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    iso = isocentre_mm if isocentre_mm is not None else tuple(grid_centre_mm(ct.affine, ct.shape[1:]).tolist())
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"geometries": {}, "isocentre_mm": list(iso)}
    points: dict[str, dict[str, list[float]]] = {}
    labels = sorted(centroids_mm)
    centres = torch.stack([torch.as_tensor(centroids_mm[v], dtype=torch.float64) for v in labels])
    for view in ("lateral", "ap"):
        drr = RenderDRR(
            view,
            source_to_detector_mm=source_to_detector_mm,
            source_to_isocentre_mm=source_to_isocentre_mm,
            detector_size_px=tuple(detector_size_px),
            detector_spacing_mm=detector_spacing_mm,
            isocentre_mm=iso,
        )
        image = drr(ct)
        geometry = drr.geometry_for(ct)
        path = folder / f"{view}.nii.gz"
        pixels = image[0].numpy().astype(np.float32)
        # a plain 2D image: axis 0 = rows, axis 1 = columns, pixel spacing in the affine
        affine = np.diag([detector_spacing_mm, detector_spacing_mm, 1.0, 1.0])
        atomic_write(path, lambda tmp, p=pixels, a=affine: nib.save(nib.Nifti1Image(p, a), str(tmp)))
        write_json_atomic(
            folder / f"{view}.json",
            {
                "pixel_spacing_mm": [detector_spacing_mm, detector_spacing_mm],
                "source_to_detector_mm": source_to_detector_mm,
                "source_to_patient_mm": source_to_isocentre_mm,
                "patient_id": "example",
                "view": view,
                "image": path.name,
            },
        )
        rc = geometry.project(centres).numpy()
        if centroid_noise_mm > 0:
            rc = rc + rng.normal(0.0, centroid_noise_mm / detector_spacing_mm, rc.shape)
        points[view] = {label_to_name(v): [float(r), float(c)] for v, (r, c) in zip(labels, rc)}
        out[view] = path
        out["geometries"][view] = geometry
    out["centroids"] = write_json_atomic(folder / "centroids.json", points)
    out["true_centres_mm"] = {v: (centres[i] - torch.tensor(iso, dtype=torch.float64)) for i, v in enumerate(labels)}
    return out
