"""The pieces composed as the task will: loader with the P×K sampler → model → both losses."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from pointforge.data.loader import SeededSamples, collate
from pointforge.tasks.reid.data.image_set import QueryGallerySet
from pointforge.tasks.reid.data.sampler import PKBatchSampler
from pointforge.tasks.reid.data.synthetic import SyntheticReID, SyntheticReIDParams
from pointforge.tasks.reid.data.transforms import ReIDTransformParams, build_reid_transform
from pointforge.tasks.reid.evaluator import ReIDEvaluator
from pointforge.tasks.reid.losses import batch_hard_triplet, cross_entropy_label_smooth
from pointforge.tasks.reid.model import ReIDNet, ReIDNetParams

DATA = SyntheticReIDParams(num_train_ids=6, num_test_ids=3, num_cameras=2, images_per_camera=2)
SIZE = ReIDTransformParams(height=64, width=32)


def test_train_step_and_eval_pass() -> None:
    train = SyntheticReID("train", DATA, build_reid_transform(SIZE, train=True))
    sampler = PKBatchSampler(train.pids, p=3, k=2, seed=0)
    loader = DataLoader(SeededSamples(train, seed=0), batch_sampler=sampler, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["image"].shape == (6, 3, 64, 32)
    assert (batch["pid"].view(3, 2) == batch["pid"].view(3, 2)[:, :1]).all()
    torch.manual_seed(0)
    model = ReIDNet(train.num_classes, ReIDNetParams(depth=18))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    losses = []
    for _ in range(3):  # the same batch: the loss must go down
        out = model(batch["image"])
        loss = cross_entropy_label_smooth(out["logits"], batch["pid"]) + batch_hard_triplet(
            out["features"], batch["pid"]
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]

    model.eval()
    evaluate = build_reid_transform(SIZE, train=False)
    both = QueryGallerySet(
        SyntheticReID("query", DATA, evaluate), SyntheticReID("gallery", DATA, evaluate)
    )
    evaluator = ReIDEvaluator()
    with torch.no_grad():
        for batch in DataLoader(both, batch_size=5, collate_fn=collate):
            evaluator.process(batch, model(batch["image"]))
    metrics = evaluator.evaluate()
    assert metrics["reid/num_no_match"] == 0.0 and 0.0 < metrics["reid/mAP"] <= 1.0
