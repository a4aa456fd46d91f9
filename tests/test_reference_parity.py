"""Protocol points where fp-rank follows the authors' code: pairwise with conditioning images,
the real-image baseline, and AP 0 for queries without gallery images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fp_rank
from fp_rank import InputError
from fp_rank.encoding import load_encoder
from fp_rank.images.decode import to_rgb
from tests.gallery_fixtures import png_bytes, write_gallery
from tests.test_ranking import textbook_ap


def _embed(images: list) -> np.ndarray:
    out = []
    for img in images:
        arr = np.asarray(img, dtype=np.float64) / 255.0
        out.append(np.r_[arr.mean(axis=(0, 1)), arr.std(axis=(0, 1)), arr[::4, ::4, 0].ravel()[:8]])
    return np.asarray(out)


ENCODER = load_encoder(_embed, name="parity-colour", revision="1")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    splits: dict[str, list[dict]] = {"gallery": [], "reference": []}
    seed = 0
    for group in ("g1", "g2"):
        for ident in ("a", "b", "c"):
            for split, count in (("gallery", 4), ("reference", 3)):
                for _ in range(count):
                    seed += 1
                    splits[split].append({"image": png_bytes(seed), "identity": f"{group}-{ident}", "group": group})
    return write_gallery(tmp_path_factory.mktemp("parity") / "g", splits)


def test_pairwise_with_conditioning_equals_per_image_cosine(gallery_dir: Path) -> None:
    gal = fp_rank.load_gallery(str(gallery_dir), progress=False)
    ref_ids = gal.reference.identities
    images = [png_bytes(1000 + i) for i in range(6)]
    labels = ["g1-a", "g1-b", "g2-c", "g1-a", "g2-a", "g2-b"]
    cond_index = [int(np.flatnonzero(ref_ids == label)[k % 3]) for k, label in enumerate(labels)]
    ref_bytes = [gal.reference.images[i]["bytes"] for i in range(len(gal.reference))]
    # mixed forms: reference rows by index, an external image (bytes), and None (reference mean)
    conditioning = [cond_index[0], ref_bytes[cond_index[1]], cond_index[2], None, cond_index[4], ref_bytes[cond_index[5]]]
    report = fp_rank.evaluate(images, labels, gallery=gal, encoder=ENCODER, conditioning=conditioning, progress=False)
    # the encoder's own (float32, unit) vectors; cosines in float64
    q = ENCODER.encode(images, progress=False).embeddings.astype(np.float64)
    r = ENCODER.encode(ref_bytes, progress=False).embeddings.astype(np.float64)
    for j, row in enumerate(report.queries):
        if conditioning[j] is None:
            expected = float(np.mean(q[j] @ r[ref_ids == labels[j]].T))
            assert row["pairwise_rule"] == "reference mean"
        else:
            expected = float(q[j] @ r[cond_index[j]])
            assert row["pairwise_rule"] == "conditioning image"
        assert row["pairwise"] == pytest.approx(expected, abs=1e-9)
    assert report.single.pairwise_rule == "mixed"
    only_cond = fp_rank.evaluate(images[:3], labels[:3], gallery=gal, encoder=ENCODER, conditioning=cond_index[:3],
                                 progress=False)
    assert only_cond.single.pairwise_rule == "conditioning image"


def test_conditioning_index_must_be_a_reference_image_of_the_same_identity(gallery_dir: Path) -> None:
    gal = fp_rank.load_gallery(str(gallery_dir), progress=False)
    other = int(np.flatnonzero(gal.reference.identities == "g1-b")[0])
    with pytest.raises(InputError, match=r"conditioning\[0\] is reference image .* 'g1-b'.* labelled 'g1-a'"):
        fp_rank.evaluate([png_bytes(5)], ["g1-a"], gallery=gal, encoder=ENCODER, conditioning=[other], progress=False)
    with pytest.raises(InputError, match="not a row of the reference split"):
        fp_rank.evaluate([png_bytes(5)], ["g1-a"], gallery=gal, encoder=ENCODER, conditioning=[999], progress=False)
    with pytest.raises(InputError, match="one per image"):
        fp_rank.evaluate([png_bytes(5)], ["g1-a"], gallery=gal, encoder=ENCODER, conditioning=[None, None],
                         progress=False)


def test_real_image_baseline_is_the_reference_split_as_queries(gallery_dir: Path) -> None:
    """The paper's baseline, against a plain loop: reference images as queries, textbook AP, per group, macro."""
    gal = fp_rank.load_gallery(str(gallery_dir), progress=False)
    report = fp_rank.evaluate([png_bytes(7)], ["g1-a"], gallery=gal, encoder=ENCODER, progress=False)
    g = _unit(_embed([to_rgb(x) for x in gal.gallery.images]))
    r = _unit(_embed([to_rgb(x) for x in gal.reference.images]))
    per_group = []
    for group in ("g1",):  # the report covers the groups its queries touch
        gi = np.flatnonzero(gal.gallery.groups == group)
        ri = np.flatnonzero(gal.reference.groups == group)
        sim = (r[ri] @ g[gi].T).astype(np.float32)  # the reference code ranks float32 distances
        aps = [textbook_ap(sim[k], gal.gallery.identities[gi] == gal.reference.identities[ri][k]) for k in range(len(ri))]
        per_group.append(np.mean(aps))
    assert report.single.real_baseline_map == pytest.approx(float(np.mean(per_group)), abs=1e-6)
    # no holdout split: the ceiling falls back to the reference split, so both figures agree here
    assert report.single.ceiling_map == report.single.real_baseline_map
    assert "Real-image baseline" in fp_rank.to_markdown(report)


@pytest.fixture(scope="module")
def tiny_clip_text_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.model_fixtures import make_tiny_clip_with_text

    return make_tiny_clip_with_text(tmp_path_factory.mktemp("clip_t") / "clip")


def test_clip_t_equals_its_definition(gallery_dir: Path, tiny_clip_text_dir: Path) -> None:
    """Per image: cosine of projected image and text features (processor text path, padding);
    per group: mean over the prompts of a subject, then over subjects."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    images = [png_bytes(2000 + i) for i in range(7)]
    labels = ["g1-a", "g1-a", "g1-a", "g1-b", "g2-c", "g2-c", "g1-b"]
    prompts = ["a {X} on a branch", "a {X} on a branch", "a {X} on the beach", "a {X} in a puddle",
               "a photo", "a photo", None]
    report = fp_rank.evaluate(images, labels, prompts=prompts, gallery=str(gallery_dir), encoder=ENCODER,
                              clip_t=str(tiny_clip_text_dir), progress=False)
    model = CLIPModel.from_pretrained(tiny_clip_text_dir).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip_text_dir)
    expected = []
    for img, label, prompt in zip(images, labels, prompts):
        if prompt is None:
            expected.append(float("nan"))
            continue
        text = prompt.replace("{X}", label.split("-")[0])  # no card nouns here: the group name stands in
        batch = processor(text=[text], images=[to_rgb(img)], return_tensors="pt", padding=True)
        with torch.no_grad():
            a = model.get_image_features(pixel_values=batch["pixel_values"]).pooler_output[0]
            b = model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).pooler_output[0]
        expected.append(float(torch.nn.functional.cosine_similarity(a, b, dim=0)))
    got = [float("nan") if row["clip_t"] is None else row["clip_t"] for row in report.queries]
    assert report.queries[-1]["clip_t"] is None  # no prompt: not scored
    np.testing.assert_allclose(got, expected, atol=1e-6)
    e = expected
    g1 = np.mean([np.mean([np.mean([e[0], e[1]]), e[2]]), e[3]])  # g1-a: two prompts; g1-b: one prompted image
    g2 = np.mean([e[4], e[5]])  # g2-c: one prompt, two images
    assert report.single.clip_t == pytest.approx(np.mean([g1, g2]), abs=1e-6)
    assert report.metadata["clip_t"]["model_id"] == str(tiny_clip_text_dir)
    assert "CLIP-T" in fp_rank.to_markdown(report)
