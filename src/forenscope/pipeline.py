"""One analysis: decode -> experts (in parallel) -> fusion -> localization -> Report, and,
when an LLM is configured, its two stages compared with the experts (`Report.llm`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, allocator
from .config import AnalysisConfig
from .experts import expert_classes, get_expert, list_experts
from .experts import schedule as scheduling
from .fusion.verdict import fuse
from .io import ImageInput, load_image
from .report.explain import explain
from .types import ExpertResult, FaceReport, ImageInfo, LLMAssessment, Region, Report

if TYPE_CHECKING:
    from .mllm.config import LLMConfig

DEFAULT_THRESHOLD = 0.5
# Image-sized temporaries reuse heap pages instead of fresh mmaps (a third of the time at 12 MP).
allocator.tune()


def default_experts() -> list[str]:
    """Registered experts marked `default` (those missing an optional dependency abstain and say
    so); comparison baselines run only when named."""
    classes = expert_classes()
    return [name for name in list_experts() if classes[name].spec.default]


ExpertDone = Callable[[ExpertResult, int], None]


def run_experts(
    image: ImageInput, names: Sequence[str] | None = None, *, threads: int | None = None,
    on_expert: ExpertDone | None = None,
) -> list[ExpertResult]:  # fmt: skip
    """Run experts on one image, in a thread pool (numpy and Pillow release the GIL), the
    longest first (`experts.schedule.plan`) and, on a large image, no two memory-heavy experts
    side by side (`experts.schedule.Dispatcher`); the results keep the order of `names`.
    `on_expert(result, total)` is called as each expert finishes: progress for the CLI and the
    service's staged results."""
    experts = [get_expert(n) for n in (names if names is not None else default_experts())]
    megapixels = image.width * image.height / 1e6
    results: list[ExpertResult | None] = [None] * len(experts)

    def run(task: list[int]) -> None:
        for i in task:
            expert = experts[i]
            scheduling.wait_for_models(expert.spec.name)
            cpu = time.thread_time()
            result: ExpertResult = expert.analyze(image)
            scheduling.observe(expert.spec.name, megapixels, time.thread_time() - cpu)
            results[i] = result
            if on_expert is not None:
                on_expert(result, len(experts))

    tasks = scheduling.plan(experts, megapixels)
    threads = threads or min(len(tasks), os.cpu_count() or 1) or 1
    if threads <= 1:
        run(list(range(len(experts))))  # one thread: the order of `names`
    else:
        dispatcher = scheduling.Dispatcher(experts, tasks, image.width * image.height)

        failures: list[BaseException] = []

        def worker() -> None:
            while (task := dispatcher.take()) is not None:
                try:
                    run(task)
                except BaseException as error:  # the other tasks still run, as before
                    failures.append(error)
                finally:
                    dispatcher.done(task)

        with ThreadPoolExecutor(max_workers=threads) as pool:
            for future in [pool.submit(worker) for _ in range(min(threads, len(tasks)))]:
                future.result()
        if failures:
            raise failures[0]  # a failing callback is raised here, as before
    return [r for r in results if r is not None]


def warm_up(experts: Sequence[str] | None = None) -> None:
    """Start loading the models of `experts` (default: the default set) on a background thread,
    once per process; the experts wait for it when they run (see experts.schedule.warm_up)."""
    names = experts if experts is not None else default_experts()
    known = expert_classes()
    scheduling.warm_up([get_expert(n) for n in names if n in known])


def image_info(image: ImageInput) -> ImageInfo:
    return ImageInfo(
        path=image.path,
        sha256=image.sha256,
        format=image.format,
        width=image.width,
        height=image.height,
        mode=image.mode,
        bytes=len(image.data),
        frames=image.frames,
        bit_depth=image.bit_depth,
        orientation_applied=image.orientation,
        notes=list(image.notes),
    )


def analyze_image(
    image: ImageInput,
    *,
    experts: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    threads: int | None = None,
    llm: LLMConfig | None = None,
    on_expert: ExpertDone | None = None,
) -> Report:
    """Analyse an already decoded image; with `llm`, also run the MLLM stages (see llm_tier).
    `on_expert`: see run_experts."""
    return _analysis(image, experts, threshold, threads, llm, decode_s=None, on_expert=on_expert)


def _analysis(
    image: ImageInput, experts: Sequence[str] | None, threshold: float, threads: int | None,
    llm: LLMConfig | None, decode_s: float | None, on_expert: ExpertDone | None = None,
) -> Report:  # fmt: skip
    """experts -> fusion -> faces -> explanation -> LLM tier, then the Report, built once.
    `decode_s` (when the file was decoded here) leads the timings and counts in the total."""
    timings: dict[str, float] = {} if decode_s is None else {"decode_s": decode_s}
    start = time.perf_counter()
    results = run_experts(image, experts, threads=threads, on_expert=on_expert)
    timings["experts_s"] = time.perf_counter() - start
    image.drop_planes()
    for r in results:
        timings[f"expert.{r.expert}_s"] = r.elapsed_s

    t = time.perf_counter()
    fused = fuse(results, height=image.height, width=image.width, threshold=threshold)
    mask, regions = fused.mask, fused.regions
    timings["fusion_s"] = time.perf_counter() - t

    t = time.perf_counter()
    faces, regions, notes = _faces(image, results, regions)
    timings["faces_s"] = time.perf_counter() - t

    # What the experts, fusion and faces found: the explanation and the LLM read it, and the
    # Report is this plus what they say about it.
    findings = Report(
        analysis_config=analysis_config(results, threshold),
        forenscope_version=__version__,
        image=image_info(image),
        verdict=fused.verdict,
        attribution=fused.attribution,
        regions=regions,
        experts=results,
        key_evidence=fused.key_evidence,
        fused_heatmap=fused.heatmap,
        fused_mask=mask,
        faces=faces,
        notes=notes,
        errors=[r.error for r in results if r.error is not None],
    )
    explanation = explain(findings)
    assessment = None
    if llm is not None:
        t = time.perf_counter()
        assessment, explanation = llm_tier(findings, explanation, image, llm)
        timings["llm_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - start + (decode_s or 0.0)
    return findings.model_copy(
        update={"explanation": explanation, "llm": assessment, "timings": timings}
    )


def analysis_config(results: list[ExpertResult], threshold: float) -> dict[str, Any]:
    """What decided this result (forenscope.config), plus the experts that ran and the map
    threshold: a resumed batch compares it to tell a stale report from a current one."""
    return {
        **AnalysisConfig.current().record(),
        "experts": {r.expert: r.version for r in results},
        "threshold": threshold,
    }


def _faces(
    image: ImageInput, results: list[ExpertResult], regions: list[Region]
) -> tuple[list[FaceReport], list[Region], list[str]]:
    """Face reports (when a face expert ran), and the regions with each one named by the facial
    part it covers, so a map over a face says "the left eye of face 1", not just "upper
    middle"."""
    classes = expert_classes()
    if not any(classes[r.expert].spec.kind == "faces" for r in results if r.expert in classes):
        return [], regions, []
    from .experts.face_common import analyze_faces
    from .faces import describe_region_on_faces

    faces, why_not = analyze_faces(image, results)
    named = []
    for region in regions:
        part = describe_region_on_faces(region.bbox, faces)
        if part is not None:
            description = f"{region.description.rstrip('.')}; on {part}."
            region = region.model_copy(update={"on_face": part, "description": description})
        named.append(region)
    return faces, named, [f"faces not analysed: {why_not}"] if why_not else []


def llm_tier(
    findings: Report, explanation: str, image: ImageInput, llm: LLMConfig
) -> tuple[LLMAssessment, str]:
    """Stage 1 (detect), then stage 2 (analyse, grounded on the findings' evidence and regions).

    The experts' verdict stays: the assessment records the LLM's answers and where they agree
    with the experts, and the explanation gains a paragraph that says so. LLM call failures
    and refusals are recorded there, never raised.
    """
    from .mllm.assess import assess
    from .mllm.narrative import assessment_paragraph

    assessment = assess(findings, image, llm)
    paragraph = assessment_paragraph(findings.verdict, assessment)
    if paragraph:
        explanation = f"{explanation}\n\n{paragraph}" if explanation else paragraph
    return assessment, explanation


def analyze(
    source: str | os.PathLike[str] | bytes,
    *,
    experts: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    threads: int | None = None,
    llm: LLMConfig | None = None,
) -> Report:
    """Analyse one image (a path or the file's bytes) and return its Report.

    Raises `forenscope.errors.InputError` (or a subclass) when the input cannot be decoded.
    """
    t = time.perf_counter()
    warm_up(experts)  # the models load while the image decodes
    image = load_image(source if isinstance(source, bytes) else Path(source))
    decode_s = time.perf_counter() - t
    return _analysis(image, experts, threshold, threads, llm, decode_s=decode_s)
