"""Video analysis (issue 17): clips written here by PyAV's real encoders, with known edits,
and bad input that must be refused with a clear error while a batch goes on."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy import ndimage

from forenscope.cli import main
from forenscope.types import BBox, VideoReport
from forenscope.video import VideoDecodeError, VideoLimits, VideoTooLargeError, open_clip
from forenscope.video.analyze import analyze_video
from forenscope.video.batch import INDEX_NAME, analyze_clips
from forenscope.video.decode import packet_sizes
from forenscope.video.reencode import double_encoding
from forenscope.video.report import write_video_report
from forenscope.video.sample import choose_frames, dense_pass, scene_cuts
from forenscope.video.temporal import box_iou, interpolated_frames, local_spans
from video_fixtures import PASTE, SPAN, H, N, W, background, pasted_clip, write_clip

av = pytest.importorskip("av", reason="PyAV is a core dependency of the video extra")
FAST = ["ela", "noise"]  # two quick experts keep the end-to-end tests to seconds


def span_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    return inter / (max(a[1], b[1]) - min(a[0], b[0]) + 1)


@pytest.mark.parametrize("edit", ["paste", "warp"])
def test_a_region_edited_for_a_span_is_found_in_space_and_time(tmp_path: Path, edit: str) -> None:
    path = pasted_clip(tmp_path / f"{edit}.mp4", edit)
    with open_clip(path) as clip:
        dense = dense_pass(clip, VideoLimits())
        spans = local_spans(dense, scene_cuts(dense), W, H)
    hits = [f for f in spans if f.kind == "local_span" and f.bbox is not None]
    assert hits, [f.summary for f in spans]
    best = max(hits, key=lambda f: box_iou(f.bbox, PASTE))  # type: ignore[arg-type]
    assert box_iou(best.bbox, PASTE) >= 0.5  # type: ignore[arg-type]
    assert span_iou((best.frame_start, best.frame_end), SPAN) >= 0.5
    assert best.suggests == "tampered"
    assert f"frames {best.frame_start}-{best.frame_end}" in best.summary


def detailed(t: int) -> np.ndarray:
    """A fine texture moving 6 px per frame: an average of two frames is a double image."""
    rng = np.random.default_rng(1)
    base = np.kron(rng.random((H // 4, (W + 400) // 4)) * 255, np.ones((4, 4)))
    g = ndimage.gaussian_filter(base, 1.5)[:, 6 * t : 6 * t + W]
    return np.repeat(g.astype(np.uint8)[..., None], 3, axis=2)


def test_interpolated_frames_are_found_in_time(tmp_path: Path) -> None:
    """Frames 11, 13, ..., 29 replaced by the average of their neighbours (blended frame-rate
    conversion); the untouched clip has no such span."""
    frames = [
        ((detailed(t - 1).astype(np.uint16) + detailed(t + 1)) // 2).astype(np.uint8)
        if 10 <= t < 30 and t % 2
        else detailed(t)
        for t in range(N)
    ]
    found = {}
    for name, clip_frames in (("blended", frames), ("camera", [detailed(t) for t in range(N)])):
        with open_clip(write_clip(tmp_path / f"{name}.mp4", clip_frames)) as clip:
            dense = dense_pass(clip, VideoLimits())
            found[name] = interpolated_frames(dense, scene_cuts(dense))
    assert found["camera"] == []
    assert len(found["blended"]) == 1
    hit = found["blended"][0]
    assert span_iou((hit.frame_start, hit.frame_end), (11, 29)) >= 0.5


@pytest.mark.parametrize("motion", ["pan", "zoom"])
def test_smooth_camera_motion_is_not_taken_for_blended_frames(tmp_path: Path, motion: str) -> None:
    """A smooth texture panning 1 px a frame, or zooming in 3% a frame: each frame is close to
    the average of its neighbours (the plain check alone called frames 1-38 of the pan and 2-13
    of the zoom blended), but closer still to its neighbours moved onto it by optical flow, so
    no span is reported."""
    frames = [background(t) if motion == "pan" else background(0, 1.03**t) for t in range(N)]
    with open_clip(write_clip(tmp_path / f"{motion}.mp4", frames)) as clip:
        dense = dense_pass(clip, VideoLimits())
        assert [f.summary for f in interpolated_frames(dense, scene_cuts(dense))] == []


def gop(keyint: int, crf: int) -> dict[str, str]:
    """x264 with a fixed keyframe interval and no B-frames."""
    return {"crf": str(crf), "preset": "veryfast", "g": str(keyint), "keyint_min": str(keyint),
            "sc_threshold": "0", "bf": "0"}  # fmt: skip


def test_a_clip_encoded_twice_shows_the_first_keyframe_interval(tmp_path: Path) -> None:
    """Encoded with a keyframe every 10 frames, decoded, encoded again with one keyframe: the
    first encoding's keyframes (frames 0, 10, ..., 110) are found in the second one's bit
    costs; the clip encoded once is not flagged."""
    rng = np.random.default_rng(0)
    frames = [
        np.clip(detailed(t % 60).astype(int) + rng.integers(-6, 7, (H, W, 3)), 0, 255).astype(
            np.uint8
        )
        for t in range(120)
    ]
    first = write_clip(tmp_path / "first.mp4", frames, options=gop(10, 23))
    with av.open(str(first)) as src:
        decoded = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    found = {}
    for name, clip_frames in (("twice", decoded), ("once", frames)):
        path = write_clip(tmp_path / f"{name}.mp4", clip_frames, options=gop(250, 18))
        with open_clip(path) as clip:
            dense = dense_pass(clip, VideoLimits())
            found[name] = double_encoding(
                clip.info.codec, clip.frame_types, packet_sizes(clip), dense
            )
    assert found["once"] == []
    assert len(found["twice"]) == 1
    hit = found["twice"][0]
    assert "one frame in every 10 " in hit.summary and hit.kind == "reencoded"
    assert span_iou((hit.frame_start, hit.frame_end), (10, 110)) >= 0.5


def test_an_unedited_panning_clip_has_no_span(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "clean.mp4", [background(t) for t in range(N)])
    with open_clip(path) as clip:
        dense = dense_pass(clip, VideoLimits())
        assert [f.summary for f in local_spans(dense, scene_cuts(dense), W, H)] == []


def test_a_hard_cut_is_found_and_sampled(tmp_path: Path) -> None:
    frames = [background(t) for t in range(20)] + [255 - background(t) for t in range(20)]
    path = write_clip(tmp_path / "cut.mp4", frames)
    with open_clip(path) as clip:
        cuts = scene_cuts(dense_pass(clip, VideoLimits()))
    assert cuts == [20]
    picks = choose_frames(40, cuts, 4)
    assert (22, "scene_cut") in picks and len(picks) == 4


def test_end_to_end_report_timeline_and_resume(tmp_path: Path) -> None:
    path = pasted_clip(tmp_path / "clip.mp4")
    seen: list[int] = []
    report = analyze_video(path, budget=4, experts=FAST, progress=lambda s, d, n: seen.append(d))
    assert [fr.index for fr in report.frames] == [5, 15, 25, 35] and seen == [1, 2, 3, 4]
    assert report.clip.frames == N and report.clip.codec == "h264"
    assert report.verdict.label in ("real", "ai_generated", "tampered", "inconclusive")
    assert report.verdict.calibrated is False
    # the pasted span holds back any confident "real" and is named in the explanation
    assert report.verdict.label != "real"
    assert any(f.kind == "local_span" for f in report.temporal)
    paths = write_video_report(report, tmp_path / "out")
    page = paths["html"].read_text()
    assert "<svg" in page and 'id="scrub"' in page and page.count('class="slide"') == 4
    assert "http" not in page.split("<main>")[1].replace("http-equiv", "")  # self-contained
    again = VideoReport.model_validate_json(paths["json"].read_text())
    assert again.verdict == report.verdict and again.frames[0].rgb is None
    assert "| 15 |" in paths["md"].read_text()


def test_batch_goes_on_after_bad_files_and_resumes(tmp_path: Path) -> None:
    good = write_clip(tmp_path / "good.mp4", [background(t) for t in range(12)])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    first = [o for o, _ in analyze_clips([empty, good], out_dir=out, budget=2, experts=FAST)]
    assert [o.status for o in first][0] == "error" and first[1].status != "error"
    assert "empty file" in first[0].summary
    assert len((out / INDEX_NAME).read_text().splitlines()) == 2
    assert list(analyze_clips([empty, good], out_dir=out, budget=2, experts=FAST)) == []


def test_cli_video_command(tmp_path: Path) -> None:
    good = write_clip(tmp_path / "good.mp4", [background(t) for t in range(12)])
    result = CliRunner().invoke(
        main, ["video", str(good), "--budget", "2", "--experts", "ela", "--json"]
    )
    assert result.exit_code in (0, 1, 4), result.output
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("{"))
    assert json.loads(line)["clip"]["frames"] == 12


def test_animated_webp_and_gif_decode(tmp_path: Path) -> None:
    frames = [Image.fromarray(background(t * 3)) for t in range(6)]
    for suffix in ("webp", "gif"):
        path = tmp_path / f"anim.{suffix}"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
        with open_clip(path) as clip:
            assert clip.info.frames == 6 and abs(clip.info.duration_s - 0.6) < 0.05
            got = [px.shape for _, _, px in clip.frames() if px is not None]
        assert got == [(H, W, 3)] * 6


# --- bad input: a clear error, before decoding where a limit applies ---------------------


def test_truncated_mp4_is_refused(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "full.mp4", [background(t) for t in range(20)])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="truncated, damaged"):
        analyze_video(cut, budget=1, experts=FAST)


def test_a_clip_cut_short_is_analysed_with_a_note(tmp_path: Path) -> None:
    """An MKV keeps its header in front: half the file still decodes, and the report says the
    file ends early instead of passing the first half off as the whole clip."""
    path = write_clip(tmp_path / "full.mkv", [background(t) for t in range(N)])
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    report = analyze_video(cut, budget=1, experts=["ela"])
    assert 0 < report.clip.frames < N
    assert any(f"of the {N} frames the header announces" in n for n in report.notes)


def test_a_stream_without_frames_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "zero.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()  # the header with its one video stream, then no frame at all
    assert path.stat().st_size > 0
    with pytest.raises(VideoDecodeError, match="no decodable frame|not a readable"):
        analyze_video(path, budget=1, experts=FAST)


def test_a_ten_hour_clip_is_refused_by_duration_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1)
        for pts in (0, 36_000):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert path.stat().st_size < 10_000
    with pytest.raises(VideoTooLargeError, match="duration .* over the limit"):
        with open_clip(path):
            pass


def test_audio_only_and_many_streams_and_a_still_image(tmp_path: Path) -> None:
    def audio_file(path: Path, streams: int) -> Path:
        with av.open(str(path), "w") as out:
            outs = [out.add_stream("pcm_s16le", rate=8000) for _ in range(streams)]
            for s in outs:
                frame = av.AudioFrame.from_ndarray(
                    np.zeros((1, 800), np.int16), format="s16", layout="mono"
                )
                frame.sample_rate = 8000
                for packet in s.encode(frame):
                    out.mux(packet)
        return path

    with pytest.raises(VideoDecodeError, match="no video stream .*audio"):
        open_clip(audio_file(tmp_path / "audio.mkv", 1)).__enter__()
    with pytest.raises(VideoTooLargeError, match="number of streams is 100"):
        open_clip(audio_file(tmp_path / "many.mkv", 100)).__enter__()
    still = tmp_path / "still.jpg"
    Image.fromarray(background(0)).save(still)
    with pytest.raises(VideoDecodeError, match="not a video container"):
        open_clip(still).__enter__()


# --- the shared clips (skip when ../shared/data is absent) -----------------------------------


def test_shared_clips_open_and_real_ones_have_no_edit_span(shared_data: Path) -> None:
    """The dense pass and the span check on all 12 clips (seconds, no experts): every clip
    opens, and no clip of the 5 real ones is said to carry a pasted span or blended frames."""
    rows = list(csv.DictReader((shared_data / "video" / "manifest.csv").open()))
    assert len(rows) == 12
    for row in rows:
        with open_clip(shared_data / row["path"]) as clip:
            dense = dense_pass(clip, VideoLimits())
            assert dense.frames >= 10
            spans = local_spans(dense, scene_cuts(dense), clip.info.width, clip.info.height)
        if row["label"] == "real":
            assert [f.summary for f in spans if f.suggests == "tampered"] == [], row["path"]
            assert interpolated_frames(dense, scene_cuts(dense)) == [], row["path"]


def test_a_face_check_that_changes_its_mind_is_reported_with_its_span() -> None:
    from forenscope.types import FaceTrack
    from forenscope.video.face_tracks import check_jumps
    from forenscope.video.sample import DensePass

    dense = DensePass(np.zeros((40, 2, 2), np.uint8), list(range(40)), [i / 20 for i in range(40)],
                      40, 1)  # fmt: skip
    box = BBox(x=10, y=10, width=30, height=30)
    track = FaceTrack(id=1, frames=[5, 15, 25, 35], boxes=[box] * 4,
                      check_scores={"face_consistency": [0.05, 0.1, 0.8, 0.75],
                                    "face_seam": [0.2, None, 0.3, 0.25]})  # fmt: skip
    found = check_jumps([track], dense)
    assert [(f.frame_start, f.frame_end, f.face_track) for f in found] == [(15, 25, 1)]
    assert found[0].summary.startswith(
        "Face 1, frames 15-25 (0.75-1.25 s): the face_consistency check goes from 0.10 to 0.80"
    )


def test_cli_takes_a_folder_and_a_bad_file_costs_only_itself(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    write_clip(folder / "good.mp4", [background(t) for t in range(12)])
    (folder / "bad.mp4").write_text("not a video")
    (folder / "notes.txt").write_text("ignored: not a video suffix")
    result = CliRunner().invoke(main, ["video", str(folder), "--budget", "1", "--experts", "ela"])
    assert result.exit_code == 3, result.output
    assert "bad.mp4: ERROR" in result.output and "good.mp4: " in result.output
    assert "notes.txt" not in result.output


def test_a_c2pa_manifest_in_an_mp4_decides_the_clip(tmp_path: Path) -> None:
    """An MP4 signed with the C2PA SDK (c2pa-python's Builder) whose manifest says the clip was
    made by a generative model: the container's provenance decides, as it does for images."""
    pytest.importorskip("c2pa", reason="c2pa-python is in the all extra")
    from provenance_fixtures import sign_c2pa

    plain = write_clip(tmp_path / "plain.mp4", [background(t) for t in range(10)])
    iptc = "http://cv.iptc.org/newscodes/digitalsourcetype/"
    action = {"action": "c2pa.created", "digitalSourceType": iptc + "trainedAlgorithmicMedia"}
    signed = tmp_path / "signed.mp4"
    signed.write_bytes(sign_c2pa(plain.read_bytes(), "video/mp4", [action], title="signed.mp4"))
    report = analyze_video(signed, budget=1, experts=["ela"])
    assert report.verdict.label == "ai_generated" and report.verdict.decided_by == "provenance"
    assert any(e.kind == "c2pa.manifest" for e in report.provenance)
    unsigned = analyze_video(plain, budget=1, experts=["ela"])
    assert unsigned.verdict.decided_by != "provenance"
    assert not any(e.kind.startswith("c2pa") for e in unsigned.provenance)


def test_a_face_replaced_by_a_warped_copy_is_named_in_space_and_time(
    shared_data: Path, face_models: Path, tmp_path: Path
) -> None:
    """A real face (a frame of the CC-BY ASL clip) panning 1 px a frame; over frames 12-27 the
    face box holds a mirrored, brightened copy of the face (a crude swap). The span is found
    on the face box (IoU >= 0.5, frame-span IoU >= 0.5) and named as face 1."""
    from forenscope.faces.detect import detect_faces

    src = shared_data / "video/real/intel-iot-devkit_sample-videos/again.mkv"
    with av.open(str(src)) as c:
        still = next(f for i, f in enumerate(c.decode(video=0)) if i == 30)
    base = still.to_ndarray(format="rgb24")[:, :600]
    x0, y0, x1, y1 = (int(v) for v in detect_faces(base)[0].box)
    frames = []
    for t in range(N):
        rgb = np.roll(base, t, axis=1)
        if SPAN[0] <= t <= SPAN[1]:
            face = rgb[y0:y1, x0 + t : x1 + t]
            rgb[y0:y1, x0 + t : x1 + t] = np.clip(face[:, ::-1] * 1.25, 0, 255).astype(np.uint8)
        frames.append(rgb)
    path = write_clip(tmp_path / "swap.mp4", frames)
    report = analyze_video(path, budget=4, experts=["face_seam"])
    spans = [f for f in report.temporal if f.kind == "local_span" and f.bbox is not None]
    truth = BBox(x=x0 + SPAN[0], y=y0, width=x1 - x0 + SPAN[1] - SPAN[0], height=y1 - y0)
    best = max(spans, key=lambda f: box_iou(f.bbox, truth))  # type: ignore[arg-type]
    assert box_iou(best.bbox, truth) >= 0.5  # type: ignore[arg-type]
    assert span_iou((best.frame_start, best.frame_end), SPAN) >= 0.5
    assert best.face_track == 1 and best.summary.startswith("On face 1: ")
