"""Assemble README.md from its parts (the head with the Space front matter, the body, and the
sections that live next to the code they describe). Run: python docs/assemble_readme.py"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = [
    "docs/readme_head.md",
    "docs/readme_body.md",
    "gallery_builders/README_SECTION.md",
    "docs/space.md",
    "docs/bad_input.md",
    "docs/scaling.md",
    "docs/readme_tail.md",
]


def main() -> None:
    chunks = []
    for part in PARTS:
        path = ROOT / part
        if path.exists():
            chunks.append(path.read_text(encoding="utf-8").strip("\n"))
    (ROOT / "README.md").write_text("\n\n".join(chunks) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
