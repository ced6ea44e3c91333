"""ReID evaluator (detectron2 protocol): store embeddings per batch, rank queries at the end.

``process(inputs, outputs)`` keeps, on CPU, the embeddings ``(B, D)`` float32 and the
``pid``, ``camid``, ``index`` and ``is_query`` fields of the batch (items of
:class:`pointforge.tasks.reid.data.image_set.QueryGallerySet`). The engine gathers every
rank's ``predictions`` to rank 0 and calls :meth:`evaluate`, which sorts the entries by their
dataset ``index`` and drops repeats (a DDP sampler may pad the last batch with copies), so the
result does not depend on how the set was split across ranks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pointforge.engine.evaluator import Evaluator
from pointforge.tasks.reid.metrics import (
    DEFAULT_CHUNK,
    JUNK_PID,
    RankResult,
    evaluate_rank,
    rank_from_distance_chunks,
)
from pointforge.tasks.reid.rerank import K1, K2, LAMBDA, rerank_distance_chunks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReIDEvalOptions:
    """Evaluation options (a section of the task's options)."""

    # Query-gallery distance; "cosine" on BNNeck features is BoT's inference setting.
    metric: str = field(default="cosine", metadata={"choices": ("cosine", "euclidean")})
    # Also report k-reciprocal re-ranked metrics under reid_rerank/ (Zhong et al. 2017).
    rerank: bool = False
    rerank_k1: int = K1  # Zhong et al. 2017, §4.3
    rerank_k2: int = K2  # Zhong et al. 2017, §4.3
    rerank_lambda: float = LAMBDA  # Zhong et al. 2017, §4.3
    # Queries per distance chunk (memory ≈ 50·chunk·G bytes, see metrics.py).
    chunk_size: int = DEFAULT_CHUNK


def _report(prefix: str, result: RankResult) -> dict[str, float]:
    return {
        f"{prefix}/rank1": float(result.cmc[0]),
        f"{prefix}/rank5": float(result.cmc[4]),
        f"{prefix}/rank10": float(result.cmc[9]),
        f"{prefix}/mAP": result.mAP,
        f"{prefix}/mINP": result.mINP,
        f"{prefix}/num_no_match": float(result.num_no_match),
    }


class ReIDEvaluator(Evaluator):
    """Query → gallery CMC / mAP / mINP (and re-ranked ones) from stored embeddings."""

    def __init__(self, options: ReIDEvalOptions | None = None) -> None:
        super().__init__()
        self.options = options or ReIDEvalOptions()

    def process(self, inputs: dict[str, Any], outputs: Any) -> None:
        """``inputs``: a collated batch with ``pid``, ``camid``, ``index``, ``is_query`` (B,);
        ``outputs``: the eval-mode embeddings ``(B, D)``."""
        feats = outputs["features"] if isinstance(outputs, dict) else outputs
        for key in ("pid", "camid", "index", "is_query"):
            if key not in inputs:
                raise KeyError(
                    f"ReIDEvaluator.process: the batch has no {key!r} field (keys: "
                    f"{sorted(inputs)}); evaluate on a QueryGallerySet"
                )
        self.predictions.append(
            {
                "features": feats.detach().float().cpu(),
                "pid": torch.as_tensor(inputs["pid"]).cpu().long(),
                "camid": torch.as_tensor(inputs["camid"]).cpu().long(),
                "index": torch.as_tensor(inputs["index"]).cpu().long(),
                "is_query": torch.as_tensor(inputs["is_query"]).cpu().bool(),
            }
        )

    def _collect(self) -> dict[str, torch.Tensor]:
        merged = {k: torch.cat([p[k] for p in self.predictions]) for k in self.predictions[0]}
        index = merged["index"].numpy()
        _, first = np.unique(index, return_index=True)  # sorted by index, repeats dropped
        keep = torch.from_numpy(first)
        return {k: v[keep] for k, v in merged.items()}

    def evaluate(self) -> dict[str, float]:
        if not self.predictions:
            raise ValueError("ReIDEvaluator.evaluate: process() was never called")
        data = self._collect()
        q, g = data["is_query"], ~data["is_query"]
        if not bool(q.any()) or not bool(g.any()):
            raise ValueError(
                f"ReIDEvaluator.evaluate: need queries and gallery images, got {int(q.sum())} "
                f"queries and {int(g.sum())} gallery images"
            )
        opt = self.options
        labels = (data["pid"][q], data["camid"][q], data["pid"][g], data["camid"][g])
        result = evaluate_rank(
            data["features"][q], data["features"][g], labels[0], labels[2], labels[1],
            labels[3], metric=opt.metric, chunk_size=opt.chunk_size, junk_pid=JUNK_PID,
        )  # fmt: skip
        if result.num_no_match:
            logger.warning(
                "ReID evaluation: %d of %d queries have no valid gallery match and are left "
                "out of the means",
                result.num_no_match,
                int(q.sum()),
            )
        metrics = _report("reid", result)
        if opt.rerank:
            feats_q, feats_g = data["features"][q], data["features"][g]
            if opt.metric == "cosine":  # re-rank on the unit sphere: d = 2 - 2 cos
                feats_q = torch.nn.functional.normalize(feats_q, dim=1)
                feats_g = torch.nn.functional.normalize(feats_g, dim=1)
            chunks = rerank_distance_chunks(
                feats_q, feats_g, opt.rerank_k1, opt.rerank_k2, opt.rerank_lambda,
                opt.chunk_size,
            )  # fmt: skip
            reranked = rank_from_distance_chunks(chunks, labels[0], labels[1], *labels[2:])
            metrics.update(_report("reid_rerank", reranked))
        return metrics
