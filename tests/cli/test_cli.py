from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pointforge.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("command", ["train", "eval", "config", "data", "detect"])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: pointforge" in capsys.readouterr().out


def test_config_prints_resolved_yaml(capsys: pytest.CaptureFixture) -> None:
    assert main(["config", str(CONFIGS / "magicpoint_shapes_quick.yaml"), "solver.lr=0.002"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["solver"]["lr"] == 0.002 and cfg["data"]["batch_size"] == 16
    assert cfg["output_dir"] == "runs/magicpoint_shapes_quick"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config", "missing.yaml"], "config file not found: missing.yaml"),
        (
            ["config", str(CONFIGS / "magicpoint_shapes.yaml"), "solver.lrr=1"],
            "Did you mean 'solver.lr'?",
        ),
        (
            ["config", str(CONFIGS / "magicpoint_shapes.yaml"), "task=magicpiont"],
            "config key 'task': unknown task 'magicpiont'. Did you mean 'magicpoint'?",
        ),
    ],
)
def test_bad_input_is_one_named_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("pointforge config: error:")
    assert message in err


def test_unknown_task_named_at_train(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(
        [
            "train",
            str(CONFIGS / "magicpoint_shapes_quick.yaml"),
            "task=magicpiont",
            "--output-dir",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "unknown task 'magicpiont'" in err and "Did you mean 'magicpoint'" in err
    assert not (tmp_path / "r").exists()  # validation happens before anything is written


def test_train_resume_eval_and_refusal(
    tmp_path: Path, tiny_overrides: list[str], capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    cfg = str(CONFIGS / "magicpoint_shapes_quick.yaml")
    args = ["train", cfg, *tiny_overrides, "--output-dir", str(out)]
    # --resume with nothing to resume starts the run (a requeue script always passes it).
    assert main([*args, "--resume"]) == 0
    table = capsys.readouterr().out
    assert "model" in table and "harris" in table and "clean ap" in table
    assert main(args) == 2  # a second run into the same dir is refused
    assert "already holds a run" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert "already finished" in capsys.readouterr().out
    code = main(
        [
            "eval",
            cfg,
            *tiny_overrides,
            "--weights",
            str(out / "checkpoints/final.pth"),
            "--output-dir",
            str(tmp_path / "ev"),
        ]
    )
    assert code == 0
    saved = json.loads((tmp_path / "ev/eval/metrics.json").read_text())
    assert 0.0 <= saved["metrics"]["clean/ap"] <= 1.0
    # Without --output-dir, results go beside the run the weights belong to; the run's own
    # final eval/metrics.json is never replaced: a second result goes to eval_<stem>/.
    final_eval = (out / "eval/metrics.json").read_text()
    weights = str(out / "checkpoints/iter_0000002.pth")
    assert main(["eval", cfg, *tiny_overrides, "--weights", weights]) == 0
    assert (out / "eval/metrics.json").read_text() == final_eval
    assert "writing to" in capsys.readouterr().out
    beside = json.loads((out / "eval_iter_0000002/metrics.json").read_text())
    assert beside["weights"] == weights
    assert main(["eval", cfg, *tiny_overrides, "--weights", weights]) == 2
    assert "already hold evaluation results" in capsys.readouterr().err
    # Weights of another architecture: one line naming what the checkpoint holds (issue 11.6).
    digits = str(CONFIGS / "resnet_digits.yaml")
    assert main(["eval", digits, "--weights", str(out / "checkpoints/final.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "task 'magicpoint'" in err and "task 'classification'" in err
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", cfg, *tiny_overrides, "--weights", str(bad)]) == 2
    assert "bad.pth" in capsys.readouterr().err


def test_detect_writes_npz(tmp_path: Path, tiny_overrides: list[str]) -> None:
    import cv2

    out = tmp_path / "run"
    cfg = str(CONFIGS / "magicpoint_shapes_quick.yaml")
    assert main(["train", cfg, *tiny_overrides, "--output-dir", str(out)]) == 0
    img = np.zeros((64, 80), np.uint8)
    cv2.rectangle(img, (20, 16), (60, 48), 255, -1)
    cv2.imwrite(str(tmp_path / "sq.png"), img)
    npz = tmp_path / "k.npz"
    assert (
        main(
            [
                "detect",
                str(tmp_path / "sq.png"),
                "--weights",
                str(out / "checkpoints/final.pth"),
                "--out",
                str(npz),
                "--threshold",
                "0",
            ]
        )
        == 0
    )
    data = np.load(npz)
    assert data["sq/keypoints"].shape[1] == 2 and data["sq/keypoints"].dtype == np.float32
    assert len(data["sq/scores"]) == len(data["sq/keypoints"]) > 0
    assert (
        main(
            [
                "detect",
                str(tmp_path / "nope.png"),
                "--weights",
                str(out / "checkpoints/final.pth"),
                "--out",
                str(npz),
            ]
        )
        == 2
    )


def test_data_shapes_dump(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "shapes"
    argv = ["data", "shapes", "--out", str(out), "--num", "3", "--workers", "1", "--noise"]
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "points").iterdir()) == [
        "000000.npy",
        "000001.npy",
        "000002.npy",
    ]
    assert main(argv) == 2 and "already holds images" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert main(["data", "shapes", "--out", str(out), "--num", "0"]) == 2


def test_data_shapes_detection_dumps_coco_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "shapes"
    assert main(["data", "shapes-detection", "--out", str(out), "--num", "3"]) == 0
    coco = json.loads((out / "val.json").read_text())
    assert len(coco["images"]) == 3 and len(list((out / "val").glob("*.png"))) == 3
    assert coco["annotations"] and all(a["bbox"][2] > 0 for a in coco["annotations"])
    first = (out / "val.json").read_bytes()
    assert main(["data", "shapes-detection", "--out", str(out), "--num", "3"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    args = ["data", "shapes-detection", "--out", str(out), "--num", "3", "--overwrite"]
    assert main(args) == 0
    assert (out / "val.json").read_bytes() == first  # same seed, same files
