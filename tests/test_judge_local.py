"""A local vision-language judge: a tiny LLaVA built in the test and loaded from its folder through
the same ``from_pretrained`` path a Hub id takes (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

import fp_rank
from fp_rank.judging import BUILT_IN, CallBudget, JudgeError, load_judge
from fp_rank.judging.local_vlm import LocalVLMJudge
from tests.gallery_fixtures import png_bytes, simple_gallery
from tests.model_fixtures import make_tiny_vlm


@pytest.fixture(scope="module")
def answering_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_vlm(tmp_path_factory.mktemp("vlm") / "answers-3", answer=3)


@pytest.fixture(scope="module")
def random_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_vlm(tmp_path_factory.mktemp("vlm") / "random")


def test_a_local_judge_scores_through_the_chat_template_and_greedy_decoding(answering_vlm: Path, tmp_path: Path) -> None:
    gallery = simple_gallery(tmp_path / "g", n_ids=2, per_id=3)
    images = [png_bytes(900 + k) for k in range(4)]
    report = fp_rank.evaluate(images, ["id0", "id0", "id1", "id1"], gallery=str(gallery), encoder="fp-rank-demo",
                              judge=str(answering_vlm), progress=False, device="cpu")
    assert [q["judge_score"] for q in report.queries] == [3, 3, 3, 3]
    judge = report.metadata["judge"]
    assert judge["backend"] == "transformers" and judge["model_class"] == "LlavaForConditionalGeneration"
    assert judge["revision"].startswith("sha256:") and judge["temperature"] == 0.0
    again = fp_rank.evaluate(images, ["id0", "id0", "id1", "id1"], gallery=str(gallery), encoder="fp-rank-demo",
                             judge=str(answering_vlm), progress=False, device="cpu")
    assert again.metadata["judge"]["from_cache"] == 4 and again.metadata["judge"]["calls"] == 0


def test_the_conversation_holds_both_images_after_the_text_turns(answering_vlm: Path) -> None:
    judge = LocalVLMJudge(str(answering_vlm), device="cpu")
    conversation_text = judge.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "the"}]},
         {"role": "user", "content": [{"type": "image"}, {"type": "image"}]}], add_generation_prompt=True, tokenize=False)
    assert conversation_text.count("<image>") == 2
    from fp_rank.judging.base import prepare_image
    from fp_rank.judging import JudgeRequest

    request = JudgeRequest(BUILT_IN.user, BUILT_IN.assistant, prepare_image(png_bytes(1), "a"), prepare_image(png_bytes(2), "b"), 0)
    budget = CallBudget(None)
    assert judge.ask(request, budget) == "Score: 3" and budget.made == 1


def test_a_model_that_never_answers_with_a_score_leaves_images_missing_and_counted(random_vlm: Path, tmp_path: Path) -> None:
    gallery = simple_gallery(tmp_path / "g", n_ids=2, per_id=3)
    report = fp_rank.evaluate([png_bytes(5), png_bytes(6)], ["id0", "id1"], gallery=str(gallery), encoder="fp-rank-demo",
                              judge=str(random_vlm), progress=False, device="cpu")
    assert all(q["judge"] is None and q["judge_missing"] == "unreadable_reply" for q in report.queries)
    # greedy decoding would only repeat itself: one reply per image, then missing
    assert report.metadata["judge"]["calls"] == 2 and report.metadata["judge"]["max_attempts"] == 1
    assert report.metadata["judge"]["missing"]["count"] == 2


def test_a_folder_that_is_not_a_vision_language_model_is_refused_before_any_encoding(tmp_path: Path, tiny_dinov2_dir: Path) -> None:
    with pytest.raises(JudgeError, match="cannot be loaded as a vision-language model"):
        load_judge(str(tiny_dinov2_dir), device="cpu")
    with pytest.raises(JudgeError, match="cannot be loaded"):
        load_judge(str(tmp_path / "absent-folder"), device="cpu")
