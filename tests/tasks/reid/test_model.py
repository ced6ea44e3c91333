from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pointforge.registry import MODELS
from pointforge.tasks.reid.model import GeneralizedMeanPooling, ReIDNet, ReIDNetParams

X = torch.randn(2, 3, 64, 32)


@pytest.mark.parametrize(("name", "dim"), [("reid_resnet18", 512), ("reid_resnet50", 2048)])
def test_shapes_both_depths(name: str, dim: int) -> None:
    model = MODELS.get(name)(num_classes=7)
    out = model(X)
    assert out["features"].shape == (2, dim) and out["logits"].shape == (2, 7)
    model.eval()
    assert model(X).shape == (2, dim)
    # last stride 1: layer4 keeps layer3's 1/16 resolution (64×32 → 4×2, not 2×1)
    assert model.feature_map(X).shape[-2:] == (4, 2)


def test_last_stride_two_and_reduction() -> None:
    model = ReIDNet(3, ReIDNetParams(depth=18, last_stride=2, embedding_dim=64))
    assert model.feature_map(X).shape[-2:] == (2, 1)
    assert model(X)["features"].shape == (2, 64)
    with pytest.raises(ValueError, match="depth"):
        MODELS.get("reid_resnet18")(num_classes=3, depth=50)


def test_bnneck_semantics() -> None:
    model = ReIDNet(5, ReIDNetParams(depth=18))
    assert not model.bnneck.bias.requires_grad and model.classifier.bias is None
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(X)
    # train mode: the triplet branch sees the pre-BN feature, the classifier the BN'd one
    expected = model.classifier(F.batch_norm(out["features"], None, None, model.bnneck.weight,
                                             model.bnneck.bias, training=True))  # fmt: skip
    torch.testing.assert_close(out["logits"], expected, rtol=1e-4, atol=1e-5)
    F.cross_entropy(out["logits"], torch.tensor([0, 1])).backward()
    opt.step()
    assert torch.count_nonzero(model.bnneck.bias) == 0  # frozen at 0
    model.eval()
    with torch.no_grad():
        pre = model.pooled(X)
        bn = model.bnneck
        post = (pre - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight
        torch.testing.assert_close(model(X), post, rtol=1e-4, atol=1e-5)


def test_gem_pooling() -> None:
    fmap = torch.rand(2, 3, 4, 5) + 0.1
    torch.testing.assert_close(GeneralizedMeanPooling(p=1.0)(fmap), fmap.mean(dim=(2, 3)))
    gem3 = GeneralizedMeanPooling()(fmap)
    torch.testing.assert_close(gem3, fmap.pow(3).mean(dim=(2, 3)).pow(1 / 3))
    assert GeneralizedMeanPooling().p.requires_grad
    model = ReIDNet(3, ReIDNetParams(depth=18, pooling="gem"))
    model(X)["logits"].sum().backward()
    assert model.pool.p.grad is not None


def test_backbone_weights_file(tmp_path) -> None:
    from torchvision.models import resnet18

    source = resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(source.state_dict(), path)
    model = ReIDNet(3, ReIDNetParams(depth=18, backbone_weights=str(path)))
    torch.testing.assert_close(model.backbone[0].weight, source.conv1.weight)
    torch.save({"conv1.weight": source.conv1.weight}, path)
    with pytest.raises(ValueError, match=r"r18\.pth .*missing bn1\.weight"):
        ReIDNet(3, ReIDNetParams(depth=18, backbone_weights=str(path)))
    with pytest.raises(FileNotFoundError, match=r"model\.backbone_weights"):
        ReIDNet(3, ReIDNetParams(depth=18, backbone_weights=str(tmp_path / "none.pth")))
