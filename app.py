"""The fp-rank Space as Hugging Face Spaces runs it (``app_file: app.py``); the code is in ``space/``."""

import logging

from fp_rank.cpu_threads import prefer_passive_waiting

prefer_passive_waiting()  # before torch loads (see fp_rank/cpu_threads.py)

from space.page import build_app, launch  # noqa: E402

__all__ = ["build_app", "launch"]

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    launch()
