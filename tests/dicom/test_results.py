from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from tests.dicom.conftest import dciodvfy_errors, requires_dciodvfy, write_pair
from transvert_monai.dicom import (
    ENCAPSULATED_STL_SOP_CLASS,
    find_study,
    ras_to_lps,
    read_vertebra_measurements,
    write_dicom_results,
)

pytest.importorskip("highdicom")
trimesh = pytest.importorskip("trimesh")

ROWS = [
    {"label": 8, "name": "T1", "centre_mm": [17.5, -13.4, 136.9], "residual_mm": 0.2, "voxels": 4970,
     "volume_ml": 16.77, "quality": "ok", "quality_checks": []},
    {"label": 9, "name": "T2", "centre_mm": [14.7, -26.7, 123.0], "residual_mm": 6.1, "voxels": 300,
     "volume_ml": 1.01, "quality": "check: residual 6.1 mm over 5 mm; check: volume below range",
     "quality_checks": ["large_residual", "volume_below_training_range"]},
]  # fmt: skip
PROVENANCE = {"model_name": "TransVert", "model_version": "0.3.0", "weights_sha256": "0123456789abcdef" * 4}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A source study, a small reconstruction folder (RAS meshes, overlays, summary) and its DICOM results."""
    from PIL import Image

    root = tmp_path_factory.mktemp("results")
    write_pair(root / "study", "1.2.3.4")
    study = find_study(root / "study")
    output = root / "reconstruction"
    (output / "meshes").mkdir(parents=True)
    meshes = {"spine": trimesh.creation.box(extents=(30, 40, 60)), "T1": trimesh.creation.icosphere(1, 10.0)}
    meshes["T2"] = trimesh.creation.icosphere(2, 12.0)
    for name, mesh in meshes.items():
        mesh.apply_translation([10.0, -20.0, 100.0])
        mesh.export(str(output / "meshes" / f"{name}.stl"))
    rng = np.random.default_rng(0)
    overlays = {view: rng.integers(0, 256, (70, 50, 3), dtype=np.uint8) for view in ("lateral", "ap")}
    for view, rgb in overlays.items():
        Image.fromarray(rgb).save(output / f"overlay_{view}.png")
    summary = {"coordinate_system": "RAS", "placement": "cone_beam", "vertebrae": ROWS, "skipped": {}}
    (output / "summary.json").write_text(json.dumps(summary))
    paths = write_dicom_results(output, study, provenance=PROVENANCE)
    return {"study": study, "output": output, "paths": paths, "overlays": overlays}


def test_files_are_named_by_type(results):
    names = [p.name for p in results["paths"]]
    assert names == [
        "sr_measurements.dcm", "stl_spine.dcm", "stl_T1.dcm", "stl_T2.dcm",
        "sc_overlay_lateral.dcm", "sc_overlay_ap.dcm",
    ]  # fmt: skip
    assert all(p.parent == results["output"] / "dicom" for p in results["paths"])


def test_every_object_is_in_the_source_study_in_its_own_series(results):
    datasets = [pydicom.dcmread(p) for p in results["paths"]]
    source = pydicom.dcmread(results["study"].lateral_path, stop_before_pixels=True)
    assert {ds.StudyInstanceUID for ds in datasets} == {source.StudyInstanceUID}
    assert {ds.PatientID for ds in datasets} == {source.PatientID}
    series = {ds.Modality: ds.SeriesInstanceUID for ds in datasets}
    assert set(series) == {"SR", "M3D", "OT"} and len(set(series.values())) == 3
    assert source.SeriesInstanceUID not in series.values()
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)


def test_sr_round_trip_gives_each_vertebra_back(results):
    found = read_vertebra_measurements(results["paths"][0])
    study = results["study"]
    assert [v["name"] for v in found] == ["T1", "T2"]
    for row, v in zip(ROWS, found):
        np.testing.assert_allclose(v["centre_mm"], row["centre_mm"], atol=1e-4)
        np.testing.assert_allclose(v["centre_lps_mm"], ras_to_lps(row["centre_mm"]), atol=1e-4)
        assert v["volume_ml"] == pytest.approx(row["volume_ml"])
        assert v["residual_mm"] == pytest.approx(row["residual_mm"])
        assert v["quality_checks"] == row["quality_checks"]
        assert v["finding_site"] == f"{row['name']} vertebra"
        assert v["source_sop_uids"] == [study.lateral_sop_uid, study.ap_sop_uid]
    assert [v["quality"] for v in found] == ["ok", "check"]
    stl = pydicom.dcmread(results["paths"][1])
    assert {v["frame_of_reference_uid"] for v in found} == {stl.FrameOfReferenceUID}


def test_sr_carries_the_provenance_and_evidence(results):
    sr = pydicom.dcmread(results["paths"][0])
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.ManufacturerModelName == "TransVert 0.3.0" and sr.DeviceSerialNumber == "0123456789abcdef"
    assert "transvert_monai" in str(sr.SoftwareVersions)
    texts = {str(e.value) for e in sr.iterall() if e.VR in ("UT", "LO", "ST", "SH", "UC")}
    assert f"weights_sha256={PROVENANCE['weights_sha256']}" in texts and "placement=cone_beam" in texts
    evidence = {
        str(item.ReferencedSOPInstanceUID)
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert evidence == {results["study"].lateral_sop_uid, results["study"].ap_sop_uid}


@pytest.mark.parametrize("index,name", [(1, "spine"), (2, "T1"), (3, "T2")])
def test_stl_round_trip_is_the_mesh_in_lps(results, index, name):
    import io

    ds = pydicom.dcmread(results["paths"][index])
    assert ds.SOPClassUID == ENCAPSULATED_STL_SOP_CLASS and ds.MIMETypeOfEncapsulatedDocument == "model/stl"
    assert ds.DocumentTitle == f"TransVert mesh {name}" and ds.SoftwareVersions
    data = bytes(ds.EncapsulatedDocument)[: int(ds.EncapsulatedDocumentLength)]
    decoded = trimesh.load(io.BytesIO(data), file_type="stl")
    source = trimesh.load(str(results["output"] / "meshes" / f"{name}.stl"))
    assert len(decoded.vertices) == len(source.vertices) and len(decoded.faces) == len(source.faces)
    expected = np.sort(ras_to_lps(source.vertices), axis=0)
    np.testing.assert_allclose(np.sort(decoded.vertices, axis=0), expected, atol=1e-4)
    assert decoded.volume == pytest.approx(source.volume, rel=1e-6)  # outward winding kept
    assert {item.ReferencedSOPInstanceUID for item in ds.SourceInstanceSequence} == {
        results["study"].lateral_sop_uid, results["study"].ap_sop_uid
    }


@pytest.mark.parametrize("index,view", [(4, "lateral"), (5, "ap")])
def test_sc_pixels_are_the_overlay_png(results, index, view):
    ds = pydicom.dcmread(results["paths"][index])
    assert ds.PhotometricInterpretation == "RGB" and ds.SamplesPerPixel == 3
    np.testing.assert_array_equal(ds.pixel_array, results["overlays"][view])
    source = results["study"].lateral if view == "lateral" else results["study"].ap
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == source.sop_instance_uid
    assert ds.SoftwareVersions


@requires_dciodvfy
def test_every_written_object_passes_dciodvfy(results):
    assert {p.name: dciodvfy_errors(p) for p in results["paths"]} == {p.name: [] for p in results["paths"]}


def test_existing_results_are_not_overwritten(results):
    with pytest.raises(FileExistsError, match="not empty"):
        write_dicom_results(results["output"], results["study"])


def test_results_from_a_pair_of_datasets(results, tmp_path):
    import shutil

    output = tmp_path / "rec"
    shutil.copytree(results["output"], output, ignore=shutil.ignore_patterns("dicom"))
    study = results["study"]
    pair = [pydicom.dcmread(p, stop_before_pixels=True) for p in (study.lateral_path, study.ap_path)]
    summary = json.loads((output / "summary.json").read_text())
    summary["vertebrae"] = summary["vertebrae"][:1]
    summary["provenance"] = {
        "software": {"name": "transvert_monai", "version": "9.9"},
        "model": {"name": "transvert", "version": "0.4", "weights_sha256": "f" * 64},
    }
    paths = write_dicom_results(output, pair, summary=summary)
    assert [v["name"] for v in read_vertebra_measurements(paths[0])] == ["T1"]
    sr = pydicom.dcmread(paths[0])
    assert (sr.ManufacturerModelName, sr.SoftwareVersions, sr.DeviceSerialNumber) == (
        "transvert 0.4", "transvert_monai 9.9", "f" * 16
    )
    assert len([p for p in paths if p.name.startswith("stl_")]) == 2  # spine and T1


def test_summary_without_vertebrae_is_refused(results, tmp_path):
    from transvert_monai.errors import TransVertInputError

    with pytest.raises(TransVertInputError, match="no vertebra"):
        write_dicom_results(tmp_path, results["study"], summary={"vertebrae": []})
