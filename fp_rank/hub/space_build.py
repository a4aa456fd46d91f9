"""Assemble the metric Space exactly as the Hub serves it, and push it.

``evaluate.load("ORG/fp-rank")`` downloads ``https://huggingface.co/spaces/ORG/fp-rank/resolve/main/fp-rank.py``:
evaluate looks for a script named after the repository (its name plus ``.py``) at the Space root
(``evaluate.loading.HubEvaluationModuleFactory``), and ``evaluate.load(folder)`` looks for
``<folder name>.py`` inside the folder. The repository ships the module as
``finer_personalization_rank.py``, which neither route finds, so :func:`build_space` writes a
folder that holds:

- ``<name>.py``: the metric module, the repository's own ``finer_personalization_rank.py`` (a
  thin re-export of :class:`fp_rank.metric.FinerPersonalizationRank`) under the name evaluate
  fetches;
- ``README.md``: the metric card (the project README, whose front matter in
  its front matter is the Space configuration), with the relative files it links to;
- ``app.py``: the repository's own ``app.py`` (``space.page.launch``, installed with ``fp-rank[app]``).
  Both files are read from the installed package (:func:`fp_rank._files.repository_file`), so a
  wheel install builds the same Space as a checkout.
  evaluate's convention for metric Spaces, ``evaluate.utils.launch_gradio_widget``, is not used:
  it builds ``gr.inputs.Dataframe``/``gr.outputs.Textbox`` (gone since Gradio 4; the Space runs
  Gradio 6), types every input into one table row (images cannot be typed there) and has no way
  to pass the ``gallery=`` argument fp-rank needs;
- ``requirements.txt``: installs ``fp-rank[app]`` at this version (or the requirement given) and Gradio.

The same inputs give the same bytes. :func:`push_space` uploads the folder with ``huggingface_hub``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fp_rank._files import repository_file
from fp_rank.file_access import write_atomic
from fp_rank.errors import InputError
from fp_rank.version import __version__

logger = logging.getLogger(__name__)

#: The repository name of the Space when none is given (``evaluate.load("ORG/fp-rank")``).
DEFAULT_SPACE_NAME = "fp-rank"
#: The repository's evaluate module file (a Space serves it as ``<name>.py``).
MODULE_FILE = "finer_personalization_rank.py"
#: The Gradio requirement of the Space (the ``app`` extra of pyproject.toml).
GRADIO_REQUIREMENT = "gradio>=6,<7"
#: Front matter keys the Hub and evaluate need in the metric card, and their fixed values.
REQUIRED_CARD_VALUES: dict[str, Any] = {"sdk": "gradio", "app_file": "app.py"}
#: Tags that mark the Space as an ``evaluate`` metric.
REQUIRED_TAGS = ("evaluate", "metric")
#: The Hub's limit on a Space's ``short_description``.
SHORT_DESCRIPTION_MAX = 60

#: The longest name (and namespace) the Hub accepts.
MAX_REPO_NAME = 96
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]*/)?[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LINK = re.compile(r"\]\(([^)\s]+)\)|\bsrc=\"([^\"]+)\"")

@dataclass(frozen=True)
class SpaceBuild:
    """What :func:`build_space` wrote.

    Attributes:
        folder: The Space folder.
        repo_id: The Space repository id it was built for.
        module: The metric module file (``<folder>/<name>.py``).
        files: Every file written, relative to ``folder``, sorted.
    """

    folder: Path
    repo_id: str
    module: Path
    files: tuple[str, ...]

    def load_call(self) -> str:
        """The ``evaluate.load`` argument that finds this folder's module offline.

        evaluate finds ``<folder>/<folder name>.py``; when the folder is named otherwise, the
        module's own path works.
        """
        if self.module.stem == self.folder.name:
            return str(self.folder)
        return str(self.module)


def module_file_name(repo_id: str) -> str:
    """The file name evaluate fetches from a Space: the repository name plus ``.py``.

    Raises:
        InputError: If ``repo_id`` is not ``NAME`` or ``ORG/NAME``.

    Example:
        >>> module_file_name("my-org/fp-rank")
        'fp-rank.py'
    """
    check_repo_id(repo_id, require_namespace=False)
    return repo_id.split("/")[-1] + ".py"


def check_repo_id(repo_id: str, *, require_namespace: bool) -> str:
    """Return ``repo_id`` if it can name a Hub repository, else raise :class:`InputError`.

    Example:
        >>> check_repo_id("my-org/fp-rank", require_namespace=True)
        'my-org/fp-rank'
    """
    if (
        not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id) or (require_namespace and "/" not in repo_id)
        or any(len(part) > MAX_REPO_NAME for part in repo_id.split("/"))
    ):
        need = "ORG/NAME" if require_namespace else "NAME or ORG/NAME"
        raise InputError(
            f"repo id {repo_id!r} cannot name a Hub repository; give {need} (letters, digits, '_', '.', '-', "
            f"at most {MAX_REPO_NAME} characters each)"
        )
    return repo_id


def metric_card_source() -> tuple[str, Path | None]:
    """The metric card text and the folder its relative links resolve against.

    The checkout's README.md when fp-rank runs from a checkout (or an editable install), else the
    long description in the installed package's metadata (the same README; its linked files are
    then not available).

    Raises:
        InputError: If neither is found.
    """
    root = Path(__file__).resolve().parents[2]
    readme = root / "README.md"
    if readme.is_file() and (root / "fp_rank").is_dir():
        return readme.read_text(encoding="utf-8"), root
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        text = metadata("fp-rank").get_payload()  # type: ignore[attr-defined]
    except (ImportError, PackageNotFoundError):
        text = None
    if isinstance(text, str) and text.startswith("---"):
        return text, None
    raise InputError(
        "cannot find the metric card: run fp-rank build-space from a checkout of fp-rank, or install a "
        "release whose metadata carries the README"
    )


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split a card into its YAML front matter (a dict) and the body after it.

    Raises:
        InputError: If the text has no ``---`` front matter or it is not a YAML mapping.

    Example:
        >>> split_front_matter("---\\ntitle: x\\n---\\n# Body\\n")
        ({'title': 'x'}, '# Body\\n')
    """
    match = re.match(r"^---\n(.*?)\n---\n?(.*)$", text, flags=re.DOTALL)
    if match is None:
        raise InputError("the metric card has no YAML front matter between '---' lines")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise InputError(f"the metric card's front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise InputError("the metric card's front matter is not a YAML mapping")
    return meta, match.group(2).lstrip("\n")


def space_card(text: str, *, title: str | None = None, datasets: Sequence[str] = ()) -> str:
    """The Space's README.md: ``text``'s card with its front matter checked (and completed).

    Args:
        text: A metric card with front matter (the project README).
        title: Replaces ``title`` when given.
        datasets: Hub dataset ids added to ``datasets:`` (the published galleries).

    Raises:
        InputError: If the front matter lacks what the Hub or evaluate needs (``sdk: gradio``,
            ``app_file: app.py``, the ``evaluate``/``metric`` tags, ``title``, a
            ``short_description`` of at most 60 characters, ``models``, ``datasets``).
    """
    meta, body = split_front_matter(text)
    problems = [f"{key}: {value}" for key, value in REQUIRED_CARD_VALUES.items() if meta.get(key) != value]
    missing_tags = [t for t in REQUIRED_TAGS if t not in (meta.get("tags") or [])]
    if missing_tags:
        problems.append(f"tags {missing_tags}")
    for key in ("title", "short_description", "models", "datasets"):
        if not meta.get(key):
            problems.append(key)
    short = meta.get("short_description") or ""
    if len(short) > SHORT_DESCRIPTION_MAX:
        problems.append(f"short_description of at most {SHORT_DESCRIPTION_MAX} characters (has {len(short)})")
    if problems:
        raise InputError(f"the metric card's front matter needs {', '.join(problems)} (README.md)")
    if title is not None:
        meta["title"] = title
    for dataset_id in datasets:
        check_repo_id(dataset_id, require_namespace=True)
        if dataset_id not in meta["datasets"]:
            meta["datasets"].append(dataset_id)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)
    return f"---\n{front}---\n\n{body}"


def linked_files(text: str, root: Path) -> list[str]:
    """Relative files a card links to (Markdown links and ``src=``) that exist under ``root``, sorted,
    with the files the linked Markdown pages link to in turn (the docs pages and their figures)."""
    found: set[str] = set()
    pending = [(text, root)]
    while pending:
        page, folder = pending.pop()
        for match in _LINK.finditer(page):
            target = (match.group(1) or match.group(2)).split("#")[0]
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
                continue
            path = (folder / target).resolve()
            if not (path.is_file() and root.resolve() in path.parents):
                continue
            rel = path.relative_to(root.resolve()).as_posix()
            if rel not in found:
                found.add(rel)
                if path.suffix == ".md":
                    pending.append((path.read_text(encoding="utf-8"), path.parent))
    return sorted(found)


def requirements_text(requirement: str | None = None) -> str:
    """The Space's requirements.txt: fp-rank with its app extra (this version, or ``requirement``).

    Example:
        >>> print(requirements_text("fp-rank[app] @ git+https://github.com/ORG/fp-rank@abc123"), end="")
        # What the Space installs (written by fp-rank build-space).
        fp-rank[app] @ git+https://github.com/ORG/fp-rank@abc123
        gradio>=6,<7
    """
    spec = requirement or f"fp-rank[app]=={__version__}"
    if "\n" in spec or not spec.strip():
        raise InputError(f"requirement {spec!r} must be one requirement line")
    return f"# What the Space installs (written by fp-rank build-space).\n{spec.strip()}\n{GRADIO_REQUIREMENT}\n"


def build_space(
    out: str | os.PathLike[str],
    *,
    repo_id: str = DEFAULT_SPACE_NAME,
    datasets: Sequence[str] = (),
    requirement: str | None = None,
    overwrite: bool = False,
) -> SpaceBuild:
    """Write the metric Space folder (see the module docstring).

    Args:
        out: The Space folder. Name it after the repository (``.../fp-rank``) so that
            ``evaluate.load(out)`` finds the module offline, as the Hub will serve it.
        repo_id: ``NAME`` or ``ORG/NAME`` of the Space; its name names the module file.
        datasets: Hub ids of the published gallery datasets, listed in the card.
        requirement: The fp-rank requirement line (default ``fp-rank[app]==<this version>``);
            e.g. a ``git+https://`` URL pinned to a commit before a release exists.
        overwrite: Replace a folder written by an earlier build.

    Returns:
        What was written.

    Raises:
        InputError: On a bad ``repo_id``, a card that lacks Space fields, or an existing
            ``out`` (without ``overwrite``, or one that is not an earlier Space build).

    Example:
        >>> import tempfile, pathlib
        >>> build = build_space(pathlib.Path(tempfile.mkdtemp()) / "fp-rank", repo_id="my-org/fp-rank")
        >>> [f for f in build.files if not f.startswith(("docs/", "BENCH", "benchmarks/"))]
        ['README.md', 'app.py', 'fp-rank.py', 'requirements.txt']
    """
    folder = Path(out)
    module_name = module_file_name(repo_id)
    earlier = _prepare_folder(folder, overwrite=overwrite)
    text, root = metric_card_source()
    card = space_card(text, datasets=datasets)
    files: dict[str, bytes] = {
        module_name: repository_file(MODULE_FILE).read_bytes(),
        "README.md": card.encode("utf-8"),
        "app.py": repository_file("app.py").read_bytes(),
        "requirements.txt": requirements_text(requirement).encode("utf-8"),
    }
    if root is not None:
        for rel in linked_files(card, root):
            files.setdefault(rel, (root / rel).read_bytes())
    else:
        logger.warning("the card's linked files are not available outside a checkout; their links stay as they are")
    _write_build(folder, files, earlier)
    return SpaceBuild(folder=folder, repo_id=repo_id, module=folder / module_name, files=tuple(sorted(files)))


def push_space(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    api: Any = None,
) -> str:
    """Create the Space (Gradio SDK) if needed and upload ``folder`` to it.

    Args:
        folder: A folder written by :func:`build_space` for this ``repo_id``.
        repo_id: ``ORG/NAME`` of the Space.
        private: Create the Space private.
        token: Hub token (default: the saved login / ``HF_TOKEN``).
        commit_message: Message of the upload commit.
        api: An ``huggingface_hub.HfApi`` (default: a new one with ``token``).

    Returns:
        The Space's URL.

    Raises:
        InputError: If ``repo_id`` has no namespace, or ``folder`` lacks ``<name>.py``.
    """
    check_repo_id(repo_id, require_namespace=True)
    folder = Path(folder)
    module = folder / module_file_name(repo_id)
    if not module.is_file():
        raise InputError(
            f"{folder} has no {module.name}: build it for this repository first (fp-rank build-space {folder} --repo-id {repo_id})"
        )
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="space",
        commit_message=commit_message or f"fp-rank {__version__}: metric Space",
        ignore_patterns=[BUILD_RECORD],
    )
    return f"https://huggingface.co/spaces/{repo_id}"


#: What a build records of the files it wrote (name -> sha256), so that ``--overwrite`` replaces
#: exactly those and never deletes a file it did not write.
BUILD_RECORD = ".fp-rank-space.json"


def _prepare_folder(folder: Path, *, overwrite: bool) -> dict[str, str]:
    """Check ``folder`` may receive a build; returns the files an earlier build recorded (to replace).

    Refused: a file in the way, a non-empty folder without ``overwrite``, a folder no build
    recorded, or a recorded file changed since (a person's edit is never overwritten).
    """
    if not folder.exists():
        return {}
    if not folder.is_dir():
        raise InputError(f"output path {folder} is a file, not a folder; name a folder for the Space")
    if not any(folder.iterdir()):
        return {}
    if not overwrite:
        raise InputError(f"output folder {folder} is not empty; choose another folder or pass --overwrite")
    record = folder / BUILD_RECORD
    try:
        written = json.loads(record.read_text(encoding="utf-8"))["files"] if record.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        written = None
    if not isinstance(written, dict):
        raise InputError(
            f"{folder} was not written by fp-rank build-space (no {BUILD_RECORD}); --overwrite only replaces an "
            "earlier build, so nothing was changed: choose an empty folder"
        )
    unsafe = [str(rel) for rel in written if not _plain(str(rel))]
    if unsafe:
        raise InputError(
            f"{folder}/{BUILD_RECORD} lists {unsafe[:3]}, outside the Space folder; it was not written by fp-rank, "
            "so nothing was changed"
        )
    changed = [rel for rel, digest in sorted(written.items()) if _digest_of(folder / rel) not in (digest, None)
               or not _inside(folder, rel)]  # a link where a built file was is a change too
    if changed:
        raise InputError(
            f"{folder}: {', '.join(changed[:5])} changed since fp-rank built the Space; nothing was replaced. Move "
            "those files away (or delete them) to rebuild"
        )
    return {str(rel): str(digest) for rel, digest in written.items()}


def _plain(rel: str) -> bool:
    """Whether ``rel`` is a plain relative path: not empty, not absolute, no ``..``, no backslash."""
    return bool(rel) and not Path(rel).is_absolute() and ".." not in Path(rel).parts and "\\" not in rel


def _inside(folder: Path, rel: str) -> bool:
    """Whether ``rel`` is plain and stays inside ``folder`` with no link on the way."""
    if not _plain(rel):
        return False
    parts = Path(rel).parts
    target = folder / rel
    if any((folder / Path(*parts[:k])).is_symlink() for k in range(1, len(parts) + 1)):
        return False
    return os.path.commonpath([os.path.realpath(target), os.path.realpath(folder)]) == os.path.realpath(folder)


def _digest_of(path: Path) -> str | None:
    """sha256 of a regular file's bytes; None when it is gone (or not a regular file)."""
    if path.is_symlink() or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_build(folder: Path, files: dict[str, bytes], earlier: Mapping[str, str]) -> None:
    """Write ``files`` and the build record; remove the earlier build's files this build no longer has.

    A file this build would write that exists without being recorded (a person's own), or a
    path that is a link, is refused before anything is written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    theirs = sorted(rel for rel in files if (folder / rel).exists() and rel not in earlier)
    linked = sorted(rel for rel in files if not _inside(folder, rel))
    if theirs or linked:
        raise InputError(
            f"{folder}: {', '.join((theirs + linked)[:5])} exist(s) and were not written by fp-rank (or are links); "
            "nothing was replaced. Build into an empty folder"
        )
    for rel in sorted(set(earlier) - set(files)):
        target = folder / rel
        if _inside(folder, rel) and _digest_of(target) == earlier[rel]:
            target.unlink()
    for rel in sorted(files):
        write_atomic(folder / rel, files[rel])
    record = {"written_by": f"fp-rank {__version__}", "files": {rel: hashlib.sha256(files[rel]).hexdigest()
                                                               for rel in sorted(files)}}
    (folder / BUILD_RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
