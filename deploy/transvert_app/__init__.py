"""TransVert MONAI Deploy application (see README.md).

Run as a folder (``python deploy/transvert_app -i ... -o ...``, a MAP's entry point): ``__main__.py`` imports
``app`` from this folder. Imported as a package (tests), the modules import each other relatively.
"""
