"""Learned tamper localizer: gradient-boosted trees over per-block forensic features.

The trees were trained only on synthetic forgeries of real photos (splices with another processing
chain, copy-moves, regions re-saved at another JPEG quality, local edits) and Platt-calibrated on
held-out synthetic forgeries, so the map is a probability per 16 px block and 0.5 is a fixed,
meaningful threshold *on that kind of data*. On real tampered images it is much weaker: see the
model card `forenscope/learned/localizer/weights/MODEL_CARD.md` before trusting it.
"""

from __future__ import annotations

import numpy as np

from ..io.input import ImageInput
from ..types import BBox, Evidence, ExpertResult, ExpertSpec
from ._signal_math import bbox_words, components
from ._working import map_box_to_image, map_shape
from .base import Expert
from .registry import register_expert

TOP_SHARE = 0.02  # image score = mean probability of the top 2% of blocks
MIN_SIDE = 64
MIN_REGION = 128  # pixels: half a 16 px block; smaller specks are upsampling edges, not regions


@register_expert
class LearnedLocalizer(Expert):
    spec = ExpertSpec(
        name="learned_localizer",
        version="0.1.1",
        kind="learned",
        targets="tampered",
        description=(
            "Gradient-boosted trees over per-16 px-block noise residuals, JPEG ghost/ELA curves "
            "and 8x8 grid phase, each compared with the rest of the image; trained on synthetic "
            "forgeries of real photos; outputs a calibrated per-block probability map."
        ),
        licence="weights: research use only (trained on BSDS500 and other non-commercial photos)",
        produces_heatmap=True,
        reference="forenscope/learned/localizer/weights/MODEL_CARD.md",
    )

    def warm_up(self) -> None:
        """Open the tree session ahead of the first image (built by the first prediction)."""
        from ..learned.localizer.model import shipped

        model = shipped()
        model.raw_score(np.zeros((1, len(model.feature_names)), dtype=np.float32))

    def _analyze(self, image: ImageInput) -> ExpertResult:
        from ..learned.localizer.model import shipped, to_pixels

        rgb = image.rgb
        if min(rgb.shape[:2]) < MIN_SIDE:
            return self.abstain(f"image smaller than {MIN_SIDE} px on a side")
        model = shipped()
        blocks = model.block_map(rgb)
        shape = (int(rgb.shape[0]), int(rgb.shape[1]))
        heatmap = to_pixels(blocks, shape, map_shape(shape))  # at the working size
        flat = np.sort(blocks.ravel())[::-1]
        top = flat[: max(1, int(round(TOP_SHARE * flat.size)))]
        score = float(top.mean())
        mask = heatmap >= 0.5
        pixels_per_map_pixel = (shape[0] * shape[1]) / mask.size
        regions = components(mask, min_pixels=max(1, round(MIN_REGION / pixels_per_map_pixel)))
        if regions:
            evidence = [self._region_evidence(regions[0], mask, heatmap, shape)]
        else:
            evidence = [
                Evidence(
                    kind="learned_localizer.none",
                    summary=(
                        f"no region of at least {MIN_REGION} pixels reaches tamper probability "
                        f"0.5 (highest 16 px block: {flat[0]:.2f})"
                    ),
                    value=round(float(flat[0]), 3),
                )
            ]
        return self.result(
            score,
            evidence=evidence,
            heatmap=heatmap,
            confidence=0.3,  # weakly validated on real tampering (model card)
            details={
                "model_version": model.version,
                "flagged_share": round(float(mask.mean()), 4),
                "max_block_probability": round(float(flat[0]), 4),
                "top2pct_mean_probability": round(score, 4),
            },
        )

    @staticmethod
    def _region_evidence(
        region: tuple[BBox, int], mask: np.ndarray, heatmap: np.ndarray, shape: tuple[int, int]
    ) -> Evidence:
        """The largest flagged region with its position (in image pixels), size and mean
        probability; `mask` and `heatmap` are at the working size, the image is `shape`."""
        found, pixels = region
        sl = (slice(found.y, found.y + found.height), slice(found.x, found.x + found.width))
        prob = float(heatmap[sl][mask[sl]].mean())
        share = pixels / mask.size
        box = map_box_to_image(found, (mask.shape[0], mask.shape[1]), shape)
        return Evidence(
            kind="learned_localizer.region",
            summary=(
                f"region at {bbox_words(box)} ({share:.1%} of the image) has mean tamper "
                f"probability {prob:.2f} from the trained block model ({mask.mean():.1%} of "
                "the image is at or above 0.5)"
            ),
            value=round(prob, 3),
            bbox=box,
        )
