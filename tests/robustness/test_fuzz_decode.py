"""Mutated image bytes never make anything but ImageDecodeError escape the decoding path.

A small hypothesis-driven run (a few hundred inputs); ``python -m tests.robustness.fuzz_decode``
runs the long one (see that module).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.robustness import fuzz_decode, zoo

SEEDS = zoo.seed_images()

ops = st.lists(
    st.tuples(
        st.sampled_from(fuzz_decode.KINDS),
        st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
        st.integers(0, 255),
        st.sampled_from([1, 2, 3, 4, 5, 8, 16, 64]),
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(sorted(SEEDS)), mutations=ops, fix_crc=st.booleans())
def test_mutated_images_decode_or_raise_image_decode_error(name: str, mutations: list, fix_crc: bool) -> None:
    data = fuzz_decode.mutate(SEEDS[name], mutations, fix_crc)
    assert fuzz_decode.check_one(data) in ("ok", "refused")


@pytest.mark.filterwarnings("ignore")
def test_every_truncation_of_an_animated_gif() -> None:
    # found by the fuzzer: a GIF cut inside its second frame made PIL's is_animated raise
    # IndexError, which escaped to_rgb before the decoder errors were caught as one family
    data = SEEDS["gif_anim"]
    outcomes = {fuzz_decode.check_one(data[:end]) for end in range(len(data) // 2, len(data))}
    assert outcomes <= {"ok", "refused"}


def test_seed_files_are_valid_and_the_mutator_is_deterministic() -> None:
    for name, data in SEEDS.items():
        assert fuzz_decode.check_one(data) == "ok", name
    sample = [("flip", 0.5, 3, 1), ("insert", 0.1, 7, 4), ("int32", 0.2, 9, 2)]
    assert fuzz_decode.mutate(SEEDS["png_rgb"], sample, True) == fuzz_decode.mutate(SEEDS["png_rgb"], sample, True)
    assert fuzz_decode.repair_png_crcs(SEEDS["png_rgb"]) == SEEDS["png_rgb"]


def test_standalone_runner_reports_no_escape(capsys: pytest.CaptureFixture) -> None:
    assert fuzz_decode.main(["--n", "300", "--seed", "3"]) == 0
    assert "escaped: 0" in capsys.readouterr().out
