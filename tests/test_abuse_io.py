"""Issue 16 in the library: the memory budget before decoding, PNG text-chunk bombs, special
files, and the expert registry's start-up race and broken plugins."""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from pathlib import Path

import pytest

import abuse_fixtures as fx
from forenscope.errors import ImageTooLargeError, InputError
from forenscope.io import Limits, load_image

MB = 1024 * 1024


# -- High 4: memory budget from the pixel count, before decoding -------------------------------


def test_memory_budget_refuses_before_decoding() -> None:
    bomb = fx.png_bomb(8000, 7400)  # the 59 MP PNG
    limits = Limits(max_pixels=60_000_000, max_memory_bytes=1024 * MB)
    start = time.monotonic()
    with pytest.raises(ImageTooLargeError, match="memory budget of 1,024 MB"):
        load_image(bomb, limits=limits)
    assert time.monotonic() - start < 2.0
    # The estimate grows with the expert threads that run side by side (by less than their
    # number: the experts work in strips, and the image's planes are shared).
    one = Limits(max_memory_bytes=10**12)
    two = Limits(max_memory_bytes=10**12, expert_threads=2)
    assert one.estimated_bytes(4000, 3000) < two.estimated_bytes(4000, 3000)
    assert two.estimated_bytes(4000, 3000) < 2 * one.estimated_bytes(4000, 3000)


def test_default_budget_fits_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from forenscope.io.limits import machine_memory_bytes

    assert Limits().max_memory_bytes <= machine_memory_bytes()
    monkeypatch.setenv("FORENSCOPE_MAX_MEMORY_MB", "200")
    assert Limits.from_env().max_memory_bytes == 200 * MB
    with pytest.raises(ImageTooLargeError, match="FORENSCOPE_MAX_MEMORY_MB"):
        load_image(fx.png_bomb(3000, 2000), limits=Limits.from_env())


def test_probe_reads_the_header_only() -> None:
    from forenscope.io.image import probe_image

    assert probe_image(fx.png_bomb(3000, 2000), Limits(max_memory_bytes=10**12)) == (3000, 2000)
    with pytest.raises(ImageTooLargeError):
        probe_image(fx.png_bomb(3000, 2000), Limits(max_memory_bytes=128 * MB))


# -- Low 5: a huge compressed PNG text chunk is skipped, not fatal -------------------------------


@pytest.mark.parametrize("kind", [b"zTXt", b"iTXt"])
def test_huge_compressed_text_chunk_is_skipped_with_a_note(kind: bytes) -> None:
    data = fx.png_with_text_chunk(2 * MB, kind=kind)
    image = load_image(data)
    assert image.width == 48 and "parameters" not in image.text_chunks
    assert any("parameters" in n and "skipped" in n for n in image.notes), image.notes
    assert image.data == data  # the experts still see the original bytes
    small = load_image(fx.png_with_text_chunk(1000, kind=kind))
    assert small.text_chunks["parameters"] == "a" * 1000


# -- Medium 1: special files never reach a reader --------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_load_image_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = fx.write_fifo(tmp_path)
    box: list[BaseException] = []

    def load() -> None:
        try:
            load_image(fifo)
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        with open(fifo, "wb"):
            pass
        pytest.fail("load_image blocked on a FIFO")
    assert isinstance(box[0], InputError) and "not a regular file" in str(box[0])


# -- Medium 2: the import race, and a broken plugin -----------------------------------------------


def test_available_survives_a_module_without_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    from forenscope.experts.registry import expert_classes

    # What a half-finished import on another thread (or cv2's loader) leaves in sys.modules.
    half = types.ModuleType("cv2_half_imported")
    half.__spec__ = None
    monkeypatch.setitem(sys.modules, "cv2_half_imported", half)
    cls = next(iter(expert_classes().values()))
    spec = cls.spec.model_copy(update={"requires": ["cv2_half_imported"]})
    monkeypatch.setattr(cls, "spec", spec)
    assert cls().available() is None


def test_a_broken_plugin_does_not_take_the_experts_down(monkeypatch: pytest.MonkeyPatch) -> None:
    from forenscope.experts import registry

    class BrokenEntryPoint:
        name = "broken"

        def load(self) -> None:
            raise RuntimeError("plugin bug")

    monkeypatch.setattr(registry, "entry_points", lambda group: [BrokenEntryPoint()])
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_PLUGIN_ERRORS", {})
    assert "ela" in registry.list_experts()
    assert "plugin bug" in registry.plugin_errors()["broken"]


def test_expert_names_are_checked_deduplicated_and_capped() -> None:
    from forenscope.errors import UnknownExpertError
    from forenscope.experts.registry import MAX_EXPERT_NAMES, check_expert_names

    assert check_expert_names(["ela", " ela", "exif", "ela"]) == ["ela", "exif"]
    with pytest.raises(InputError, match="empty"):
        check_expert_names(["", " "])
    with pytest.raises(InputError, match="at most"):
        check_expert_names(["ela"] * (MAX_EXPERT_NAMES + 1))
    with pytest.raises(UnknownExpertError, match="did you mean"):
        check_expert_names(["elaa"])
