"""``pointforge export-labels``: homographic adaptation of a photo folder into label shards.

The loop only glues three parts together: :class:`~pointforge.data.datasets.photo_folder.
PhotoFolder` (decode, grey, resize), :func:`~pointforge.tasks.keypoints.adaptation.
adapt_heatmaps` (batched on the device) and :class:`~pointforge.data.label_shards.
LabelShardWriter` (atomic shards + manifest). Work is cut by shard, and completed shards are
skipped on ``resume``, so a killed export continues where it stopped and yields the same labels.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pointforge.config.schema import Config
from pointforge.data.datasets.photo_folder import PhotoFolder, collate_photos
from pointforge.data.label_shards import ImageLabels, LabelShardWriter
from pointforge.models.loading import read_state_dict
from pointforge.tasks.keypoints.adaptation import (
    adapt_heatmaps,
    adaptation_homographies,
    heatmap_keypoints,
)
from pointforge.tasks.keypoints.predictor import build_model_for_state_dict

log = logging.getLogger("pointforge")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_labels(
    cfg: Config,
    weights: str | Path,
    images: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Label every photo of ``images`` with ``weights`` into ``out_dir``; returns a summary
    (``images``, ``labelled``, ``skipped``, ``shards_written``, ``shards_resumed``)."""
    a = cfg.adaptation
    folder = PhotoFolder(images, cfg.data.image_size, cfg.data.on_bad_image)
    height, width = folder.height, folder.width
    listing = "\n".join(folder.relative_path(i) for i in range(len(folder)))
    settings = {
        "weights_sha256": _file_sha256(Path(weights)),
        "image_size": [height, width],
        "listing_sha256": hashlib.sha256(listing.encode()).hexdigest(),
        "seed": cfg.seed,
        # Batch sizes only change how the work is cut, not the labels: a resume may change them.
        "adaptation": {
            k: v for k, v in asdict(a).items() if k not in ("images_per_batch", "forward_batch")
        },
    }
    writer = LabelShardWriter(out_dir, settings, a.shard_size, len(folder), resume=resume)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    )
    model = build_model_for_state_dict(read_state_dict(weights)).to(device).eval()
    todo = [s for s in range(writer.num_shards) if not writer.done(s)]
    resumed = writer.num_shards - len(todo)
    if resumed:
        log.info(
            "export-labels: resuming, %d of %d shards already done", resumed, writer.num_shards
        )
    bar = tqdm(
        total=len(folder),
        initial=sum(len(writer.shard_range(s)) for s in range(writer.num_shards) if writer.done(s)),
        unit="img",
        desc="export-labels",
        disable=not progress,
    )
    for shard in todo:
        labels: list[ImageLabels] = []
        skipped: list[str] = []
        indices = list(writer.shard_range(shard))
        for start in range(0, len(indices), a.images_per_batch):
            batch_idx = indices[start : start + a.images_per_batch]
            photos, batch = collate_photos([folder[i] for i in batch_idx])
            skipped += sorted(set(map(folder.relative_path, batch_idx)) - {p.path for p in photos})
            bar.update(len(batch_idx))
            if batch is None:
                continue
            hom = torch.stack(
                [
                    adaptation_homographies(
                        p.index, a.num_homographies, height, width, a.homographic, cfg.seed
                    )
                    for p in photos
                ]
            )
            heat = adapt_heatmaps(
                model,
                batch.to(device),
                hom.to(device),
                a.forward_batch,
                a.aggregation,
                a.homographic.valid_border_margin,
            )
            dets = heatmap_keypoints(
                heat, a.detection_threshold, a.nms_radius, a.border, a.max_keypoints
            )
            for p, (kpts, scores) in zip(photos, dets, strict=True):
                labels.append(
                    ImageLabels(p.path, kpts, scores, (height, width), p.orig_size, p.scale)
                )
        writer.write_shard(shard, labels, skipped)
    bar.close()
    skipped_all = sum(len(s["skipped"]) for s in writer.manifest["shards"].values())
    if skipped_all:
        log.warning(
            "export-labels: skipped %d unreadable image(s) (listed in the manifest)", skipped_all
        )
    return {
        "images": len(folder),
        "labelled": len(folder) - skipped_all,
        "skipped": skipped_all,
        "shards_written": len(todo),
        "shards_resumed": resumed,
    }
