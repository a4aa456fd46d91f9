"""The fp-rank Space as Hugging Face Spaces runs it (``app_file: app.py``); the code is in ``space/``."""

import logging

from space.page import build_app, launch

__all__ = ["build_app", "launch"]

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    launch()
