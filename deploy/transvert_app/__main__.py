"""``python deploy/transvert_app -i <dicom folder> -o <output folder> [-m <bundle>]`` (and a MAP's entry point)."""

import logging

from app import TransVertApp

if __name__ == "__main__":
    logging.info(f"Begin {__name__}")
    TransVertApp().run()
    logging.info(f"End {__name__}")
