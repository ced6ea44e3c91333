from __future__ import annotations

import torch

from pointforge.tasks.reid.data.transforms import ReIDTransformParams, build_reid_transform


def test_train_and_eval_pipelines() -> None:
    params = ReIDTransformParams(height=32, width=16, erasing_prob=1.0, color_jitter=0.2)
    image = torch.randint(0, 256, (3, 50, 20), dtype=torch.uint8)
    train, evaluate = build_reid_transform(params, True), build_reid_transform(params, False)
    torch.manual_seed(0)
    a = train(image)
    torch.manual_seed(0)
    b = train(image)
    assert a.shape == (3, 32, 16) and a.dtype == torch.float32
    assert torch.equal(a, b)  # reproducible from the global RNG the loader seeds
    assert (a == 0).any()  # erasing with p=1 fills a region with 0 (the mean after normalising)
    e1, e2 = evaluate(image), evaluate(image)
    assert torch.equal(e1, e2) and e1.shape == (3, 32, 16)
    mean = torch.tensor([124, 116, 104], dtype=torch.uint8)[:, None, None]  # 255 × ImageNet mean
    assert evaluate(mean.expand(3, 8, 8).clone()).abs().max() < 0.01
