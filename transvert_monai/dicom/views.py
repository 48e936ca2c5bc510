"""The view of a radiograph header: lateral, AP, or undecided, and the rule that said so.

By the first rule that decides:

1. ViewPosition (0018,5101): LL, RL, LAT, LATERAL → lateral; AP, PA → AP;
2. ViewCodeSequence (0054,0220), SNOMED CT: 399067008 lateral, 399173006 left lateral,
   399198007 right lateral → lateral; 399348003 antero-posterior, 272479007 postero-anterior → AP;
3. PatientOrientation (0020,0020) with rows running H/F: columns towards A or P → lateral,
   towards L or R → AP;
4. words of SeriesDescription (0008,103E), then ProtocolName (0018,1030), case ignored and
   ``a.p.`` read as ``ap``: ``lat``, ``lateral``, ``ll``, ``rl``, ``sagittal`` → lateral; ``ap``,
   ``pa``, ``frontal``, ``coronal`` → AP; a text naming both, or an oblique (``obl``, ``oblique``,
   ``lao``, ``rao``, ``lpo``, ``rpo``), decides nothing.

ImageLaterality (0020,0062) is not used: it names the side of a paired body part (U for the spine),
not the direction of the beam.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["radiograph_view"]

_LATERAL_POSITIONS = frozenset({"LL", "RL", "LAT", "LATERAL"})
_AP_POSITIONS = frozenset({"AP", "PA"})
_LATERAL_CODES = {"399067008": "lateral", "399173006": "left lateral", "399198007": "right lateral"}
_AP_CODES = {"399348003": "antero-posterior", "272479007": "postero-anterior"}
_LATERAL_WORDS = frozenset({"lat", "lateral", "ll", "rl", "sagittal", "sag"})
_AP_WORDS = frozenset({"ap", "pa", "frontal", "coronal"})
_OBLIQUE_WORDS = frozenset({"obl", "oblique", "lao", "rao", "lpo", "rpo", "llo", "rlo"})


def radiograph_view(ds: Any) -> tuple[str | None, str]:
    """The view of a radiograph header by the rules of the module docstring.

    Returns:
        ``(view, rule)``: ``"lateral"``, ``"ap"`` or None, and the rule that decided (or why none did).
    """
    position = str(ds.get("ViewPosition", "") or "").strip().upper()
    if position in _LATERAL_POSITIONS:
        return "lateral", f"ViewPosition {position!r}"
    if position in _AP_POSITIONS:
        return "ap", f"ViewPosition {position!r}"
    skipped = [f"ViewPosition {position!r} is neither lateral nor AP/PA"] if position else []
    for item in ds.get("ViewCodeSequence", None) or []:
        code, scheme = str(item.get("CodeValue", "")), str(item.get("CodingSchemeDesignator", ""))
        if scheme in ("SCT", "SNM3", "SRT") or not scheme:
            if code in _LATERAL_CODES:
                return "lateral", f"ViewCodeSequence {code} ({_LATERAL_CODES[code]})"
            if code in _AP_CODES:
                return "ap", f"ViewCodeSequence {code} ({_AP_CODES[code]})"
    orientation = ds.get("PatientOrientation", None)
    if orientation and len(orientation) == 2:
        columns, rows = (str(v).strip().upper()[:1] for v in orientation)
        if rows in ("H", "F"):
            if columns in ("A", "P"):
                return "lateral", f"PatientOrientation {list(orientation)}"
            if columns in ("L", "R"):
                return "ap", f"PatientOrientation {list(orientation)}"
    for keyword in ("SeriesDescription", "ProtocolName"):
        text = re.sub(r"\b([ap])\.([ap])\b", r"\1\2", str(ds.get(keyword, "") or "").lower())  # "a.p." → "ap"
        words = set(re.split(r"[^a-z0-9]+", text)) - {""}
        if not words or words & _OBLIQUE_WORDS:
            continue
        lateral, ap = bool(words & _LATERAL_WORDS), bool(words & _AP_WORDS)
        if lateral != ap:
            return ("lateral" if lateral else "ap"), f"{keyword} {str(ds.get(keyword))!r}"
    skipped.append(
        "no ViewPosition, ViewCodeSequence, PatientOrientation or SeriesDescription/ProtocolName word names the view"
    )
    return None, "; ".join(skipped)
