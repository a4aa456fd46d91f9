"""The Gradio page of the Space: the only module that imports Gradio.

:func:`build_app` lays out the page and wires its events to :class:`~space.service.ScoringSpace`
and the renderers of :mod:`space.render`; :func:`launch` starts it. ``app.py`` at the repository
root (what Hugging Face Spaces runs) calls :func:`launch`.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import html  # noqa: E402
import shutil  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from fp_rank.errors import FpRankError  # noqa: E402
from fp_rank.runs import DEFAULT_METHOD  # noqa: E402
from space.render import (  # noqa: E402
    HEADLINE_PLACEHOLDER,
    TABLE_COLUMNS,
    headline_html,
    identity_figure,
    query_table,
    status_markdown,
    strips,
    strips_html,
)
from space.service import ScoringSpace, write_reports, write_samples  # noqa: E402
from space.settings import DEMO_GALLERY, env_int  # noqa: E402

INTRO = """
# fp-rank: does the generated image keep the subject's identity?

**Finer-Personalization Rank** ([arXiv 2512.19026](https://arxiv.org/abs/2512.19026)) scores a personalization
method by retrieval: every generated image is a query that ranks real photos of its subject among look-alike
identities (same group), and the ranking is scored by average precision. Upload generated images of a subject,
say who they show, and press **Score**.
"""

CSS = """
#fp-score { min-height: 48px; font-size: 1.1em; }
/* Gradio lists each upload with a download link labelled in KiB-based "KB"; the page states every size
   in MB of 10^6 bytes, and downloading one's own upload back is of no use: the link is hidden. */
#fp-files td.download, #fp-mapping td.download { display: none; }
"""


def _file_paths(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        path = item if isinstance(item, (str, os.PathLike)) else getattr(item, "name", None) or (item.get("path") if isinstance(item, dict) else None)
        if path:
            out.append(os.fspath(path))
    return out


def _show_downloads(json_path: Any, csv_path: Any) -> tuple[Any, Any]:
    """Show each download button that has a file, hide those without (runs after scoring)."""
    return gr.DownloadButton(visible=bool(json_path)), gr.DownloadButton(visible=bool(csv_path))


def build_app(space: ScoringSpace | None = None) -> gr.Blocks:
    """Build the Gradio Blocks page (nothing is launched).

    Args:
        space: allow-lists, limits and shared resources (default :meth:`ScoringSpace.from_env`).

    Returns:
        The ``gr.Blocks`` app; start it with :func:`launch`.
    """
    space = space or ScoringSpace.from_env()
    on_gallery, on_config, on_samples = _choice_handlers(space)

    def on_score(
        files: Any,
        gallery: str,
        config: str,
        identity: str | None,
        method: str | None,
        mapping: Any,
        encoder: str,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio's documented pattern)
    ) -> tuple[Any, ...]:
        request_dir = space.new_request_dir()
        try:
            mapping_paths = _file_paths(mapping)
            outcome = space.score(
                _file_paths(files),
                gallery=gallery,
                config=config,
                identity=identity,
                method=method,
                mapping=mapping_paths[0] if mapping_paths else None,
                encoder=encoder,
                work_dir=request_dir,
                upload_root=demo.GRADIO_CACHE,
                progress=lambda fraction, desc: progress(fraction, desc=desc),
            )
            progress(0.9, desc="Drawing the rankings")
            json_path, csv_path = write_reports(outcome, request_dir / "report")
            return (
                status_markdown(outcome),
                headline_html(outcome),
                json_path,
                csv_path,
                strips_html(strips(outcome, space), len(outcome.report.queries) if outcome.report else 0),
                pd.DataFrame(query_table(outcome)),
                identity_figure(outcome),
            )
        finally:
            shutil.rmtree(request_dir / "inputs", ignore_errors=True)
            space.end_request(request_dir)

    # The page is laid out after the handlers are defined: gr.Progress(track_tqdm=True) patches tqdm,
    # and bars opened before the patch (the gallery load's) would otherwise fail when collected.
    # Gradio keeps its own copy of each upload (shared by identical files, so not ours to delete
    # mid-flight); delete_cache clears copies older than 30 minutes every 5 minutes.
    with gr.Blocks(title="fp-rank: identity preservation", analytics_enabled=False, delete_cache=(300, 1800)) as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            inputs = _input_column(space)
            outputs = _output_column()
        gr.Markdown(
            f"### Top-{space.top_k} gallery matches of each generated image\n"
            "Each strip shows the generated image (QUERY), then the real gallery photos it ranked highest, best first. "
            "**✓ HIT** (green frame): same identity as the query. **✗ MISS** (red frame): a look-alike identity."
        )
        outputs["strips"] = gr.HTML(strips_html([], 0), label="Ranked strips", elem_id="fp-strips")
        # one line per cell; on a narrow screen the table scrolls sideways inside its box
        outputs["table"] = gr.Dataframe(headers=TABLE_COLUMNS, label="Per image", interactive=False, elem_id="fp-table",
                                        wrap=False)

        i, o = inputs, outputs
        i["gallery"].change(on_gallery, i["gallery"], [i["config"], i["identity"]], api_visibility="private")
        i["config"].change(on_config, [i["gallery"], i["config"]], i["identity"], api_visibility="private")
        i["sample"].click(on_samples, None, [i["files"], i["mapping"], i["gallery"], i["config"], i["identity"]],
                          api_visibility="private")
        i["score"].click(
            on_score,
            [i[name] for name in ("files", "gallery", "config", "identity", "method", "mapping", "encoder")],
            [o[name] for name in ("status", "headline", "json", "csv", "strips", "table", "chart")],
            api_name="score",
            concurrency_limit=env_int("FP_RANK_SPACE_CONCURRENCY", 2),
            scroll_to_output=True,
        ).then(_show_downloads, [o["json"], o["csv"]], [o["json"], o["csv"]], api_visibility="private")  # /score still returns paths
    demo.space = space  # type: ignore[attr-defined]  # for tests and launch()
    return demo


def _choice_handlers(space: ScoringSpace) -> tuple[Any, Any, Any]:
    """The handlers that refill the choices: a gallery picked, a config picked, the samples loaded."""

    def on_gallery(label: str) -> tuple[Any, Any]:
        try:
            cfgs = space.configs(label)
            return gr.Dropdown(choices=cfgs, value=cfgs[0]), gr.Dropdown(choices=space.identities(label, cfgs[0]), value=None)
        except FpRankError as exc:
            raise gr.Error(str(exc)) from None

    def on_config(label: str, config: str) -> Any:
        try:
            return gr.Dropdown(choices=space.identities(label, config), value=None)
        except FpRankError as exc:
            raise gr.Error(str(exc)) from None

    def on_samples() -> tuple[Any, ...]:
        paths, csv_path = write_samples(space.work_root / "samples")
        return paths, csv_path, DEMO_GALLERY, "all", None

    return on_gallery, on_config, on_samples


def _input_column(space: ScoringSpace) -> dict[str, Any]:
    """The left column: the uploads, what they show, the encoder and the buttons (by name)."""
    gallery_labels = list(space.galleries)
    first = gallery_labels[0]
    configs = space.configs(first)
    encoder_labels = list(space.encoders)
    c: dict[str, Any] = {}
    with gr.Column(scale=2, min_width=320):
        c["files"] = gr.File(
            label="Generated images (image files or a .zip)",
            file_count="multiple",
            file_types=["image", ".zip"],
            elem_id="fp-files",
            height=180,
        )
        with gr.Row():
            # min widths make the pair stack on a phone instead of cutting the gallery's label
            c["gallery"] = gr.Dropdown(gallery_labels, value=first, label="Gallery", elem_id="fp-gallery", min_width=220)
            c["config"] = gr.Dropdown(configs, value=configs[0], label="Config", allow_custom_value=True,
                                      elem_id="fp-config", min_width=120)
        c["identity"] = gr.Dropdown(
            space.identities(first, configs[0]),
            value=None,
            label="Identity shown in the batch",
            info="Required unless every file is listed in a mapping CSV.",
            allow_custom_value=True,
            elem_id="fp-identity",
        )
        c["method"] = gr.Textbox(value=DEFAULT_METHOD, label="Method name", max_lines=1, elem_id="fp-method")
        c["mapping"] = gr.File(
            label="Or a mapping CSV: file, identity[, method]", file_types=[".csv"], elem_id="fp-mapping", height=150
        )
        c["encoder"] = gr.Dropdown(encoder_labels, value=encoder_labels[0], label="Encoder", elem_id="fp-encoder")
        with gr.Row():
            c["sample"] = gr.Button(
                "Load sample images", variant="secondary", elem_id="fp-sample", visible=DEMO_GALLERY in space.galleries
            )
            c["score"] = gr.Button("Score", variant="primary", elem_id="fp-score")
        gr.Markdown(f"<small>{html.escape(space.limits.describe())} Uploaded files are deleted after scoring "
                    "(the server's upload cache within the hour).</small>")
    return c


def _output_column() -> dict[str, Any]:
    """The right column: the scores, the status, the downloads and the chart (by name)."""
    c: dict[str, Any] = {}
    with gr.Column(scale=3, min_width=420):
        c["headline"] = gr.HTML(HEADLINE_PLACEHOLDER, label="Scores", elem_id="fp-headline")
        c["status"] = gr.Markdown(label="Status", elem_id="fp-status")
        with gr.Row():  # hidden until a result exists: nothing to download before
            c["json"] = gr.DownloadButton("Download report (JSON)", elem_id="fp-json", size="md", visible=False)
            c["csv"] = gr.DownloadButton("Download per-image CSV", elem_id="fp-csv", size="md", visible=False)
        c["chart"] = gr.Plot(label="mAP per identity", show_label=False, elem_id="fp-chart")  # the figure has its title
    return c


def launch(demo: gr.Blocks | None = None, **kwargs: Any) -> Any:
    """Launch the page (server name from ``GRADIO_SERVER_NAME``, default 127.0.0.1).

    Args:
        demo: an app from :func:`build_app` (default: a new one).
        **kwargs: passed on to ``gr.Blocks.launch`` (e.g. ``server_port``, ``prevent_thread_lock``).

    Returns:
        What ``gr.Blocks.launch`` returns.
    """
    demo = demo or build_app()
    space: ScoringSpace = demo.space  # type: ignore[attr-defined]
    options: dict[str, Any] = {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "max_file_size": max(space.limits.max_file_bytes, space.limits.max_archive_bytes, space.limits.max_mapping_bytes),
        "css": CSS,
        "ssr_mode": False,
        "show_error": False,
    }
    options.update(kwargs)
    return demo.launch(**options)

