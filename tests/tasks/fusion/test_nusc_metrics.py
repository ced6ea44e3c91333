"""nuScenes metrics on hand-built cases; every expected number is derived in the comments.

Reminders used below: AP averages max(p - 0.1, 0) over the 90 recall points r = 0.11 ... 1.00
and divides by 0.9; a prediction matches when its xy centre distance is < the threshold
(0.5, 1, 2, 4 m); TP errors are taken at 2 m.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pointforge.tasks.fusion import nusc_json
from pointforge.tasks.fusion.nusc_metrics import NuscBox, NuscEvalConfig, evaluate_nusc

SIZE = (2.0, 4.0, 1.5)


def car(
    xy,
    score=-1.0,
    token="s1",
    size=SIZE,
    yaw=0.3,
    vel=(1.0, 0.0),
    attr="vehicle.moving",
    name="car",
):
    return NuscBox.from_yaw(
        token,
        (xy[0], xy[1], 1.0),
        size,
        yaw,
        velocity=vel,
        detection_name=name,
        detection_score=score,
        attribute_name=attr,
    )


def test_perfect_predictions() -> None:
    gt = [
        car((0, 0)),
        car((20, 5), token="s2"),
        car((5, 5), name="pedestrian", attr="pedestrian.moving"),
    ]
    preds = [NuscBox(**{**b.__dict__, "detection_score": 0.9}) for b in gt]
    m = evaluate_nusc(gt, preds)
    assert m["mAP"] == pytest.approx(1.0) and m["nds"] == pytest.approx(1.0)
    for k in ("mATE", "mASE", "mAOE", "mAVE", "mAAE"):
        assert m[k] == pytest.approx(0.0, abs=1e-12)
    # Only the classes in the GT are reported.
    assert {k for k in m if k.startswith("AP/") and "@" not in k} == {"AP/car", "AP/pedestrian"}


def test_single_offset_box() -> None:
    # Offset 0.7 m: a miss at 0.5 m (AP 0, the FP alone), a hit at 1, 2, 4 m (AP 1).
    # AP/car = 3/4; ATE = 0.7 exactly; NDS = (5*0.75 + (1-0.7) + 4*1) / 10 = 0.805.
    m = evaluate_nusc([car((10, 0))], [car((10.7, 0), score=0.8)])
    assert m["AP/car@0.5m"] == 0.0 and m["AP/car@1m"] == pytest.approx(1.0)
    assert m["AP/car"] == pytest.approx(0.75)
    assert m["mATE"] == pytest.approx(0.7)
    assert m["nds"] == pytest.approx(0.805)
    # Exactly at the threshold is not a match (strict "<"): 1.0 m offset fails at 1 m.
    m = evaluate_nusc([car((10, 0))], [car((11.0, 0), score=0.8)])
    assert m["AP/car@1m"] == 0.0 and m["AP/car@2m"] == pytest.approx(1.0)


def test_wrong_size_yaw_and_velocity() -> None:
    # Size (2, 5, 1.5) vs (2, 4, 1.5): intersection 2*4*1.5 = 12, union 12 + 15 - 12 = 15,
    # IoU 0.8 -> ASE 0.2.
    m = evaluate_nusc([car((0, 0))], [car((0, 0), 0.9, size=(2.0, 5.0, 1.5))])
    assert m["mASE"] == pytest.approx(0.2)
    # Yaw 0.3 vs 0.8 -> AOE 0.5; vs 0.3 + 2π - 0.2 -> the short way round, 0.2.
    assert evaluate_nusc([car((0, 0))], [car((0, 0), 0.9, yaw=0.8)])["mAOE"] == pytest.approx(0.5)
    m = evaluate_nusc([car((0, 0))], [car((0, 0), 0.9, yaw=0.3 + 2 * math.pi - 0.2)])
    assert m["mAOE"] == pytest.approx(0.2)
    # Velocity (1, 0) vs (4, 4): |(3, 4)| = 5 -> AVE 5, which NDS caps at 1 (contributes 0):
    # NDS = (5*1 + 1 + 1 + 1 + 0 + 1) / 10 = 0.9.
    m = evaluate_nusc([car((0, 0))], [car((0, 0), 0.9, vel=(4.0, 4.0))])
    assert m["mAVE"] == pytest.approx(5.0) and m["nds"] == pytest.approx(0.9)
    # Wrong attribute: AAE 1.
    m = evaluate_nusc([car((0, 0))], [car((0, 0), 0.9, attr="vehicle.stopped")])
    assert m["mAAE"] == pytest.approx(1.0)


def test_false_positive_ranked_first_vs_last() -> None:
    gt = [car((0, 0)), car((20, 0))]
    fp = car((40, 0))
    # FP last (scores 0.9, 0.8 TP, 0.1 FP): (recall, precision) = (0.5, 1), (1, 1), (1, 2/3).
    # With two points at recall 1 the interpolation takes the last one (2/3) at r = 1.00, so 89
    # points have p - 0.1 = 0.9 and one has 2/3 - 0.1: AP = (89*0.9 + 2/3 - 0.1) / 90 / 0.9.
    last = evaluate_nusc(gt, [car((0, 0), 0.9), car((20, 0), 0.8), car(fp.translation[:2], 0.1)])
    assert last["AP/car"] == pytest.approx((89 * 0.9 + 2 / 3 - 0.1) / 90 / 0.9)
    # FP first (0.9 FP, 0.8 and 0.7 TP): points (0, 0), (0.5, 0.5), (1, 2/3). Interpolated p = r
    # on [0, 0.5] and 0.5 + (r - 0.5)/3 on [0.5, 1]. Sum of p - 0.1 over r = 0.11..0.50 is
    # (1 + ... + 40)/100 = 8.2, over r = 0.51..1.00 is 50*0.4 + (1 + ... + 50)/300 = 24.25:
    # AP = 32.45 / 90 / 0.9.
    first = evaluate_nusc(gt, [car(fp.translation[:2], 0.9), car((0, 0), 0.8), car((20, 0), 0.7)])
    assert first["AP/car"] == pytest.approx(32.45 / 90 / 0.9)
    assert first["AP/car"] < last["AP/car"]


def test_missed_object_and_cumulative_tp_error() -> None:
    gt = [car((0, 0)), car((20, 0))]
    # One of two found: precision 1 up to recall 0.5, then 0 -> 40 points of 0.9: AP = 4/9.
    m = evaluate_nusc(gt, [car((0.2, 0), 0.9)])
    assert m["AP/car"] == pytest.approx(4 / 9)
    assert m["mATE"] == pytest.approx(0.2)  # averaged over recall 0.11 ... 0.50 only
    # Two TPs with ATE 0.2 (score 0.9) and 0.6 (score 0.5): cumulative means (0.2, 0.4) at
    # recalls (0.5, 1). The score falls linearly 0.9 -> 0.5 over recall 0.5 -> 1, so the error
    # at recall r > 0.5 is 0.2 + 0.4 (r - 0.5); 0.2 below. Mean over r = 0.11..1.00:
    # (40*0.2 + 50*0.2 + 0.4*(1 + ... + 50)/100) / 90 = 23.1 / 90.
    m = evaluate_nusc(gt, [car((0.2, 0), 0.9), car((20.6, 0), 0.5)])
    assert m["mATE"] == pytest.approx(23.1 / 90)


def test_two_classes_and_undefined_errors() -> None:
    # Car perfect; pedestrian missed entirely: AP 1 and 0 -> mAP 0.5. The pedestrian's TP
    # errors are 1 (no prediction), the car's 0: every mTP is 0.5 -> NDS = (2.5 + 5*0.5)/10.
    gt = [car((0, 0)), car((5, 5), name="pedestrian", attr="pedestrian.moving")]
    m = evaluate_nusc(gt, [car((0, 0), 0.9)])
    assert m["AP/car"] == pytest.approx(1) and m["AP/pedestrian"] == 0.0
    assert m["mAP"] == pytest.approx(0.5) and m["mATE"] == pytest.approx(0.5)
    assert m["nds"] == pytest.approx(0.5)
    # Barrier: velocity and attribute undefined (NaN, excluded from the means); heading is
    # π-periodic, so a barrier turned by π + 0.1 has AOE 0.1 (a car would have π - 0.1).
    bar = car((5, 5), name="barrier", attr="", vel=(math.nan, math.nan))
    pred_bar = car((5, 5), 0.9, name="barrier", attr="", yaw=0.3 + math.pi + 0.1)
    m = evaluate_nusc([car((0, 0)), bar], [car((0, 0), 0.9, vel=(1.5, 0.0)), pred_bar])
    assert math.isnan(m["AVE/barrier"]) and math.isnan(m["AAE/barrier"])
    assert m["AOE/barrier"] == pytest.approx(0.1) and m["mAOE"] == pytest.approx(0.05)
    assert m["mAVE"] == pytest.approx(0.5)  # the car's alone
    m = evaluate_nusc([car((0, 0))], [car((0, 0), 0.9, yaw=0.3 + math.pi + 0.1)])
    assert m["mAOE"] == pytest.approx(math.pi - 0.1)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="'s9'"):
        evaluate_nusc([car((0, 0))], [car((0, 0), 0.9, token="s9")])
    with pytest.raises(ValueError, match="detection_name 'tram'"):
        evaluate_nusc([car((0, 0))], [car((0, 0), 0.9, name="tram")])
    cfg = NuscEvalConfig(max_boxes_per_sample=1)
    with pytest.raises(ValueError, match="max_boxes_per_sample"):
        evaluate_nusc([car((0, 0))], [car((0, 0), 0.9), car((1, 0), 0.8)], cfg)


def test_class_range_filter() -> None:
    far = NuscBox(**{**car((60, 0)).__dict__, "ego_translation": (60.0, 0.0, 0.0)})
    near = NuscBox(**{**car((10, 0)).__dict__, "ego_translation": (10.0, 0.0, 0.0)})
    pred = NuscBox(**{**near.__dict__, "detection_score": 0.9})
    # Without the filter the far car is a miss (AP 4/9); with it (car range 50 m) AP is 1.
    assert evaluate_nusc([near, far], [pred])["AP/car"] == pytest.approx(4 / 9)
    m = evaluate_nusc([near, far], [pred], NuscEvalConfig(apply_class_range=True))
    assert m["AP/car"] == pytest.approx(1.0)


def test_json_round_trip(tmp_path) -> None:
    gt = [car((0, 0)), car((5, 5), name="barrier", attr="", vel=(math.nan, math.nan))]
    preds = [car((0.3, 0), 0.9), car((5, 5), 0.4, name="barrier", attr="")]
    g = nusc_json.write_ground_truth(tmp_path, gt, sample_tokens=["s1", "s0"], use_radar=True)
    r = nusc_json.write_results(tmp_path, preds)
    assert r.name == "results_nusc.json" and g.name == "ground_truth_nusc.json"
    gt2, meta, tokens = nusc_json.read_boxes(g)
    preds2, _, _ = nusc_json.read_boxes(r)
    assert meta == {
        "use_camera": True,
        "use_lidar": False,
        "use_radar": True,
        "use_map": False,
        "use_external": False,
    }
    assert tokens == ["s1", "s0"] and all(b.detection_score == -1 for b in gt2)
    assert math.isnan(gt2[1].velocity[0])
    np.testing.assert_allclose(gt2[0].rotation, gt[0].rotation)
    a, b = evaluate_nusc(gt, preds), evaluate_nusc(gt2, preds2)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], nan_ok=True)
    bad = tmp_path / "bad.json"
    bad.write_text('{"meta": {}, "results": {"s1": [{"sample_token": "s1"}]}}')
    with pytest.raises(ValueError, match=r"bad.json: results\['s1'\]\[0\]: missing key"):
        nusc_json.read_boxes(bad)
