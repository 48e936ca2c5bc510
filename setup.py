"""Build hook: the wheel carries the bundle ``bundles/transvert`` as package data ``transvert_monai/bundle``.

The bundle lives once in git, at ``bundles/transvert`` (where the model zoo and ``monai.bundle`` expect
it); ``build_py`` copies the files it ships into the built package, so an installed
``transvert-reconstruct`` finds it (``transvert_monai.apps.reconstruct.default_bundle``). Everything else
is declared in ``setup.cfg``.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLE = Path(__file__).resolve().parent / "bundles" / "transvert"
#: the files of the bundle that ship in the wheel (no checkpoints, logs, evaluation outputs or TorchScript)
BUNDLE_FILES = (
    "LICENSE",
    "large_files.yml",
    "configs/*.json",
    "configs/*.conf",
    "docs/*.md",
    "docs/*.txt",
    "models/model.pt",
)
REQUIRED = ("configs/inference.json", "configs/metadata.json", "models/model.pt", "docs/README.md")


class BuildPyWithBundle(build_py):
    """``build_py`` that also copies the bundle into ``<build_lib>/transvert_monai/bundle``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install finds the checkout's bundles/transvert
            return
        missing = [name for name in REQUIRED if not (BUNDLE / name).is_file()]
        if missing:
            raise FileNotFoundError(f"the wheel must carry the bundle, but {BUNDLE} lacks {missing}.")
        target = Path(self.build_lib) / "transvert_monai" / "bundle"
        for pattern in BUNDLE_FILES:
            for source in sorted(BUNDLE.glob(pattern)):
                destination = target / source.relative_to(BUNDLE)
                self.mkpath(str(destination.parent))
                self.copy_file(str(source), str(destination))


setup(cmdclass={"build_py": BuildPyWithBundle})
