"""``pointforge export-labels``: homographic adaptation of a photo folder into label shards.

The loop only glues three parts together: :class:`~pointforge.data.datasets.photo_folder.
PhotoFolder` (decode, grey, resize), :func:`~pointforge.tasks.keypoints.adaptation.
adapt_heatmaps` (batched on the device) and :class:`~pointforge.data.label_shards.
LabelShardWriter` (atomic shards + manifest). Work is cut by shard, and completed shards are
skipped on ``resume``, so a killed export continues where it stopped and yields the same labels.

Under ``torchrun`` (docs/keypoints.md) the shards still to do are dealt out round-robin (on a
fresh export shard ``i`` goes to rank ``i % world``); each rank commits its shards as part
files, and rank 0 merges them into the manifest after a barrier. Shards are computed exactly
as in one process, so the directory equals a single-process export byte for byte (given the
same device and thread count), and ``--resume`` works with any number of ranks.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm import tqdm

from pointforge.config.schema import Config
from pointforge.data.datasets.photo_folder import PhotoFolder, collate_photos
from pointforge.data.label_shards import ImageLabels, LabelShardWriter, write_shard_part
from pointforge.engine import comm
from pointforge.engine.launch import distributed, resolve_device
from pointforge.engine.precision import warn_if_emulated_bf16
from pointforge.models.loading import read_state_dict
from pointforge.tasks.keypoints.adaptation import (
    adapt_heatmaps,
    adaptation_homographies,
    for_amp,
    heatmap_keypoints,
)
from pointforge.tasks.keypoints.predictor import build_model_for_state_dict

log = logging.getLogger("pointforge")

T = TypeVar("T")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _on_rank0(fn: Callable[[], T]) -> T | None:
    """``fn()`` on rank 0, its error raised on every rank (no rank waits for a rank 0 that
    refused, e.g. a non-empty ``--out``); ``None`` on the other ranks."""
    result: T | None = None
    error: BaseException | None = None
    if comm.is_main_process():
        try:
            result = fn()
        except Exception as exc:  # re-raised below, on every rank
            error = exc
    error = comm.broadcast(error)
    if error is not None:
        raise error
    return result


def export_labels(
    cfg: Config,
    weights: str | Path,
    images: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Label every photo of ``images`` with ``weights`` into ``out_dir``; returns a summary
    (``images``, ``labelled``, ``skipped``, ``shards_written``, ``shards_resumed``), the same on
    every rank. Under torchrun this joins the process group (unless the caller already did)."""
    device = resolve_device(cfg.device)
    with distributed(device, cfg.train.ddp.backend):
        return _export(cfg, weights, images, Path(out_dir), resume, progress, device)


def _export(
    cfg: Config,
    weights: str | Path,
    images: str | Path,
    out: Path,
    resume: bool,
    progress: bool,
    device: torch.device,
) -> dict[str, Any]:
    a = cfg.adaptation
    folder = PhotoFolder(images, cfg.data.image_size, cfg.data.on_bad_image)
    height, width = folder.height, folder.width

    def open_writer() -> LabelShardWriter:
        listing = "\n".join(folder.relative_path(i) for i in range(len(folder)))
        settings = {
            "weights_sha256": _file_sha256(Path(weights)),
            "image_size": [height, width],
            "listing_sha256": hashlib.sha256(listing.encode()).hexdigest(),
            "seed": cfg.seed,
            # Batch sizes only change how the work is cut, not the labels: a resume may change
            # them.
            "adaptation": {
                k: v for k, v in asdict(a).items() if k not in ("images_per_batch", "forward_batch")
            },
        }
        return LabelShardWriter(out, settings, a.shard_size, len(folder), resume=resume)

    # Rank 0 alone creates or validates the directory and merges parts left by a killed run.
    writer = _on_rank0(open_writer)
    done: list[int] = comm.broadcast(
        sorted(int(k) for k in writer.manifest["shards"]) if writer else []
    )
    num_shards = -(-len(folder) // a.shard_size)
    todo = sorted(set(range(num_shards)) - set(done))
    rank, world = comm.get_rank(), comm.get_world_size()
    mine = todo[rank::world]
    if done and comm.is_main_process():
        log.info("export-labels: resuming, %d of %d shards already done", len(done), num_shards)
    if a.amp == "bf16" and comm.is_main_process():
        warn_if_emulated_bf16(device, "adaptation.amp=bf16")
    model = for_amp(build_model_for_state_dict(read_state_dict(weights)).to(device).eval(), a.amp)
    bar = tqdm(
        total=sum(len(_shard_range(s, a.shard_size, len(folder))) for s in mine),
        unit="img",
        desc="export-labels" if world == 1 else f"export-labels (rank 0 of {world})",
        disable=not (progress and comm.is_main_process()),
    )
    for shard in mine:
        labels: list[ImageLabels] = []
        skipped: list[str] = []
        indices = list(_shard_range(shard, a.shard_size, len(folder)))
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
                a.amp,
            )
            dets = heatmap_keypoints(
                heat, a.detection_threshold, a.nms_radius, a.border, a.max_keypoints
            )
            for p, (kpts, scores) in zip(photos, dets, strict=True):
                labels.append(
                    ImageLabels(p.path, kpts, scores, (height, width), p.orig_size, p.scale)
                )
        if writer is not None and world == 1:
            writer.write_shard(shard, labels, skipped)
        else:
            write_shard_part(out, shard, labels, skipped)
    bar.close()
    comm.barrier()  # every rank's parts are on disk

    def finish() -> dict[str, Any]:
        assert writer is not None
        writer.merge_parts()
        skipped_all = sum(len(s["skipped"]) for s in writer.manifest["shards"].values())
        if skipped_all:
            log.warning(
                "export-labels: skipped %d unreadable image(s) (listed in the manifest)",
                skipped_all,
            )
        return {
            "images": len(folder),
            "labelled": len(folder) - skipped_all,
            "skipped": skipped_all,
            "shards_written": len(todo),
            "shards_resumed": len(done),
        }

    summary: dict[str, Any] | None = comm.broadcast(_on_rank0(finish))
    assert summary is not None  # rank 0's, on every rank
    return summary


def _shard_range(shard: int, shard_size: int, num_images: int) -> range:
    """Image indices of ``shard`` (as :meth:`LabelShardWriter.shard_range`, on every rank)."""
    return range(shard * shard_size, min((shard + 1) * shard_size, num_images))
