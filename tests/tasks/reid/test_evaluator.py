from __future__ import annotations

import pytest
import torch

from pointforge.tasks.reid.evaluator import ReIDEvalOptions, ReIDEvaluator
from pointforge.tasks.reid.metrics import evaluate_rank


def batches(order: torch.Tensor, size: int, feats, pids, cams, is_query):
    for s in range(0, len(order), size):
        idx = order[s : s + size]
        yield (
            {"pid": pids[idx], "camid": cams[idx], "index": idx, "is_query": is_query[idx]},
            feats[idx],
        )


def test_result_does_not_depend_on_split_or_order() -> None:
    g = torch.Generator().manual_seed(0)
    n, nq = 60, 15
    feats = torch.randn(n, 16, generator=g)
    pids = torch.randint(1, 6, (n,), generator=g)
    cams = torch.randint(0, 3, (n,), generator=g)
    is_query = torch.arange(n) < nq
    results = []
    for size, order in [(7, torch.arange(n)), (13, torch.randperm(n, generator=g))]:
        ev = ReIDEvaluator(ReIDEvalOptions(rerank=True, rerank_k1=5, rerank_k2=2, chunk_size=4))
        ev.reset()
        for inputs, outputs in batches(order, size, feats, pids, cams, is_query):
            ev.process(inputs, outputs)
        ev.process(*next(batches(torch.arange(3), 3, feats, pids, cams, is_query)))  # DDP padding
        results.append(ev.evaluate())
    assert results[0] == results[1]
    direct = evaluate_rank(feats[:nq], feats[nq:], pids[:nq], pids[nq:], cams[:nq], cams[nq:])
    assert results[0]["reid/rank1"] == pytest.approx(float(direct.cmc[0]))
    assert results[0]["reid/mAP"] == pytest.approx(direct.mAP)
    assert results[0]["reid/mINP"] == pytest.approx(direct.mINP)
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
        assert 0.0 <= results[0][f"reid_rerank/{key}"] <= 1.0


def test_missing_fields_are_named() -> None:
    ev = ReIDEvaluator()
    with pytest.raises(KeyError, match="is_query"):
        ev.process({"pid": torch.zeros(1), "camid": torch.zeros(1), "index": torch.zeros(1)},
                   torch.zeros(1, 4))  # fmt: skip
