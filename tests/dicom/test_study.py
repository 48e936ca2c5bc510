from __future__ import annotations

import pytest
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.dicom.conftest import write_pair, write_view
from transvert_monai.dicom import StudyError, find_studies, find_study, radiograph_view
from transvert_monai.errors import TransVertInputError


def _code(value):
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "SCT", "view"
    return item


def _without_view_position(ds):
    del ds.ViewPosition
    del ds.ViewCodeSequence


def _only(**tags):
    """An edit leaving ``tags`` as the only view information."""

    def edit(ds):
        _without_view_position(ds)
        del ds.PatientOrientation
        del ds.SeriesDescription
        for keyword, value in tags.items():
            setattr(ds, keyword, value)

    return edit


# (edit of a lateral-view file, the view and the rule expected)
VIEW_CASES = [
    ("view_position_ll", lambda ds: None, "lateral", "ViewPosition 'LL'"),
    ("view_position_rl", _only(ViewPosition="RL"), "lateral", "ViewPosition 'RL'"),
    ("view_position_lateral", _only(ViewPosition="LATERAL"), "lateral", "ViewPosition"),
    ("view_position_pa", _only(ViewPosition="PA"), "ap", "ViewPosition 'PA'"),
    ("view_code_lateral", _only(ViewCodeSequence=[_code("399067008")]), "lateral", "ViewCodeSequence 399067008"),
    ("view_code_pa", _only(ViewCodeSequence=[_code("272479007")]), "ap", "ViewCodeSequence 272479007"),
    ("orientation_lateral", _only(PatientOrientation=["P", "F"]), "lateral", "PatientOrientation"),
    ("orientation_ap", _only(PatientOrientation=["R", "F"]), "ap", "PatientOrientation"),
    ("series_description_lat", _only(SeriesDescription="Spine LAT standing"), "lateral", "SeriesDescription"),
    ("series_description_pa", _only(SeriesDescription="WS PA"), "ap", "SeriesDescription"),
    ("protocol_name_ap", _only(SeriesDescription="whole spine", ProtocolName="spine a.p."), "ap", "ProtocolName"),
    ("unknown_position_falls_back", _only(ViewPosition="XX", SeriesDescription="lat"), "lateral", "SeriesDescription"),
    ("both_words_decide_nothing", _only(SeriesDescription="AP + LAT"), None, "no ViewPosition"),
    ("oblique_decides_nothing", _only(SeriesDescription="lat oblique"), None, "no ViewPosition"),
    ("nothing", _only(), None, "no ViewPosition"),
]


@pytest.mark.parametrize("edit,view,rule", [c[1:] for c in VIEW_CASES], ids=[c[0] for c in VIEW_CASES])
def test_radiograph_view_rules(tmp_path, edit, view, rule):
    import pydicom

    path = write_view(tmp_path, "x.dcm", "lateral", study_uid="1.2.3", edit=edit)
    found, why = radiograph_view(pydicom.dcmread(path, stop_before_pixels=True))
    assert found == view and rule in why


def test_study_selected_by_view_position(tmp_path):
    lateral, ap = write_pair(tmp_path, "1.2.3")
    (study,) = find_studies(tmp_path)
    assert (study.lateral_path, study.ap_path, study.study_uid, study.patient_id) == (lateral, ap, "1.2.3", "P1")
    assert study.lateral.selected_by == "ViewPosition 'LL'" and study.notes[-1].startswith("no centroids.json")
    import pydicom

    assert study.lateral_sop_uid == pydicom.dcmread(lateral).SOPInstanceUID


def test_fallback_selection_is_noted(tmp_path):
    write_view(tmp_path, "a", "lateral", study_uid="1.2.3", edit=_only(SeriesDescription="LAT"))
    write_view(tmp_path, "b", "ap", study_uid="1.2.3", edit=_only(PatientOrientation=["L", "F"]))
    study = find_study(tmp_path)
    assert study.lateral.selected_by.startswith("SeriesDescription")
    assert study.ap.selected_by.startswith("PatientOrientation")
    assert any("no usable ViewPosition" in n for n in study.notes)


def test_mirrored_views_are_accepted_with_a_note(tmp_path):
    write_view(tmp_path, "a.dcm", "lateral", study_uid="1.2.3", edit=_only(ViewPosition="RL"))
    write_view(tmp_path, "b.dcm", "ap", study_uid="1.2.3", edit=_only(ViewPosition="PA"))
    study = find_study(tmp_path)
    assert (study.lateral.view_position, study.ap.view_position) == ("RL", "PA")
    assert any("right lateral" in n for n in study.notes) and any("postero-anterior" in n for n in study.notes)


def _second_lateral(folder):
    write_view(folder, "lat2.dcm", "lateral", study_uid="1.2.3")


def _ap_is_lateral(folder):
    (folder / "ap.dcm").unlink()


def _other_patient(folder):
    (folder / "ap.dcm").unlink()
    write_view(folder, "ap.dcm", "ap", study_uid="1.2.3", patient_id="P2")


def _no_spacing(folder):
    (folder / "lat.dcm").unlink()

    def drop(ds):
        del ds.ImagerPixelSpacing

    write_view(folder, "lat.dcm", "lateral", study_uid="1.2.3", edit=drop)


REFUSALS = [
    ("two_laterals", _second_lateral, "2 lateral radiographs"),
    ("no_ap", _ap_is_lateral, "no AP radiograph"),
    ("two_patients", _other_patient, "2 patients"),
    ("no_pixel_spacing", _no_spacing, "no valid ImagerPixelSpacing"),
]


@pytest.mark.parametrize("change,match", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_ambiguous_or_incomplete_study_is_refused(tmp_path, change, match):
    write_pair(tmp_path, "1.2.3")
    change(tmp_path)
    scan = find_studies(tmp_path)
    assert len(scan) == 0 and list(scan.errors) == ["1.2.3"]
    error = scan.errors["1.2.3"]
    assert isinstance(error, TransVertInputError) and error.study_uid == "1.2.3"
    with pytest.raises(StudyError, match=match):
        find_study(tmp_path)


def _non_image(folder, name, modality, sop_class):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality, ds.PatientID = "1.2.3", generate_uid(), modality, "P1"
    ds.save_as(str(folder / name), enforce_file_format=True)


def test_non_image_objects_are_ignored_with_a_note(tmp_path):
    write_pair(tmp_path, "1.2.3")
    _non_image(tmp_path, "report", "SR", "1.2.840.10008.5.1.4.1.1.88.34")
    _non_image(tmp_path, "seg.dcm", "SEG", "1.2.840.10008.5.1.4.1.1.66.4")
    study = find_study(tmp_path)
    assert sum("not a radiograph; ignored" in n for n in study.notes) == 2


def test_several_studies_one_refused(tmp_path):
    write_pair(tmp_path / "a" / "series", "1.1")
    write_pair(tmp_path / "b", "2.2")
    (tmp_path / "b" / "ap.dcm").unlink()
    write_pair(tmp_path / "c", "3.3", patient_id="P3")
    scan = find_studies(tmp_path)
    assert [s.study_uid for s in scan] == ["1.1", "3.3"] and list(scan.errors) == ["2.2"]
    with pytest.raises(StudyError, match="2 usable studies"):
        find_study(tmp_path)
    assert find_study(tmp_path, study_uid="3.3").patient_id == "P3"
    with pytest.raises(StudyError, match="no AP"):
        find_study(tmp_path, study_uid="2.2")


def test_files_without_suffix_are_read_and_others_skipped(tmp_path):
    write_view(tmp_path, "IM0001", "lateral", study_uid="1.2.3")
    write_view(tmp_path, "sub/IM0002", "ap", study_uid="1.2.3")
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    (tmp_path / "notes.txt").write_text("not DICOM")
    (tmp_path / "broken.dcm").write_bytes(b"not DICOM at all")
    scan = find_studies(tmp_path)
    assert len(scan) == 1 and len(scan.ignored) == 1 and "broken.dcm" in scan.ignored[0]


def test_centroids_next_to_or_above_the_images_belong_to_the_study(tmp_path):
    write_pair(tmp_path / "s1" / "series", "1.1")
    write_pair(tmp_path / "s2", "2.2")
    (tmp_path / "s1" / "centroids.json").write_text("{}")
    (tmp_path / "centroids.json").write_text("{}")  # shared by both studies: used by neither
    by_uid = {s.study_uid: s for s in find_studies(tmp_path)}
    assert by_uid["1.1"].centroids == tmp_path / "s1" / "centroids.json"
    assert by_uid["2.2"].centroids is None
    given = tmp_path / "c2.json"
    given.write_text("{}")
    by_uid = {s.study_uid: s for s in find_studies(tmp_path, centroids={"2.2": given})}
    assert by_uid["2.2"].centroids == given


def test_empty_folder_has_no_study(tmp_path):
    assert len(find_studies(tmp_path)) == 0
    with pytest.raises(StudyError, match="no DICOM radiographs"):
        find_study(tmp_path)
    with pytest.raises(FileNotFoundError):
        find_studies(tmp_path / "missing")
