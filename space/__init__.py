"""The fp-rank Gradio Space: upload generated images, see identity scores and the rankings behind them.

Run ``python app.py`` (offline is fine): the page opens on the embedded synthetic demo gallery
and the weight-free demo encoder. A person uploads generated images (files or a ``.zip``), picks
the gallery, its config and the identity of the batch (or uploads a CSV ``file,identity[,method]``),
picks an encoder and presses Score. Every generated image is a query ranked against the gallery
of its identity's group with :func:`fp_rank.evaluate`; the page shows the headline mAP, CMC@1, the
pairwise baseline and the chance floor, a per-image table, each query's top-k gallery matches
with hits and misses marked, a per-identity chart and the report files.

What the page accepts is decided by the Space owner, never by its users:

* galleries and encoders come from allow-lists (``FP_RANK_SPACE_GALLERIES``,
  ``FP_RANK_SPACE_ENCODERS``); ``trust_remote_code`` is never switched on;
* upload limits (files per batch, bytes per file, pixels per image, archive sizes) are checked
  before anything is decoded or extracted, and can be tightened with ``FP_RANK_SPACE_*`` variables.

Every request keeps its state in local variables and its own temporary folder (removed when the
request ends); only read-only resources (loaded galleries, encoders, thumbnails) are shared.

Modules: :mod:`space.settings` (owner settings and limits), :mod:`space.uploads` (upload
planning, zip extraction, header checks, the mapping CSV), :mod:`space.resources` (galleries, encoders,
thumbnails and request folders shared read-only; scrubbing of server paths), :mod:`space.service`
(the scoring service), :mod:`space.render` (HTML, Markdown and tables as plain data) and :mod:`space.page`
(the Gradio page, the only module that imports Gradio). Importing this package loads nothing.
"""
