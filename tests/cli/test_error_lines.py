"""The README's promise, for every command: bad input exits with code 2 and one line on stderr
that names the bad key, file or name (no traceback, nothing half-written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointforge.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
QUICK = str(ROOT / "configs" / "magicpoint_shapes_quick.yaml")
DIGITS = str(ROOT / "configs" / "resnet_digits.yaml")


def cases(tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, text the one error line must contain)."""
    garbage = tmp / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    text = tmp / "notes.jpg"
    text.write_text("not an image")
    empty_dir = tmp / "empty"
    empty_dir.mkdir(exist_ok=True)
    return [
        (["train", QUICK, "solver.lrr=1"], "'solver.lrr'"),
        (["train", str(tmp / "nope.yaml")], "nope.yaml"),
        (["train", QUICK, "data.batch_size=abc"], "'data.batch_size'"),
        (["eval", QUICK, "--weights", str(tmp / "missing.pth")], "missing.pth"),
        (["eval", QUICK, "--weights", str(garbage)], "garbage.pth"),
        (["config", DIGITS, "classification.topk=5"], "'classification.topk'"),
        (["config", QUICK, "task=magicpont"], "magicpont"),
        (["data", "shapes", "--out", str(tmp / "s"), "--num", "0"], "--num"),
        (["data", "shapes-detection", "--out", str(tmp / "d"), "--num", "0"], "--num"),
        (["detect", str(tmp / "missing.png"), "--out", str(tmp / "o.npz")], "missing.png"),
        (["detect", str(text), "--out", str(tmp / "o.npz")], "notes.jpg"),
        (["detect", str(text), "--out", str(tmp / "o.npz"), "--weights", str(garbage)], "garbage"),
        (["match", str(text), str(text), "--out", str(tmp / "m.png")], "notes.jpg"),
        (
            [
                *["export-labels", "configs/export_labels.yaml"],
                *["--images", str(tmp / "no_dir"), "--out", str(tmp / "labels")],
            ],
            "no_dir",
        ),
        (["convert", "magicleap", str(tmp / "v1.pth"), str(tmp / "o.pth")], "v1.pth"),
        (["export-onnx", "--out", "/nonexistent_dir_xyz/x.onnx"], "nonexistent_dir_xyz"),
        (["summary", QUICK, "model.name=superpont"], "superpont"),
        (
            [
                *["explain", DIGITS, str(tmp / "no.png")],
                *["--weights", str(garbage), "--out", str(tmp / "c.png")],
            ],
            "garbage.pth",
        ),
        (["launch", "--nproc", "2", QUICK, "solver.lrr=1"], "'solver.lrr'"),
    ]


def test_every_command_reports_bad_input_in_one_named_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    failures = []
    for argv, name in cases(tmp_path):
        code = main(argv)
        err = capsys.readouterr().err.strip()
        # Log records (WARNING/INFO lines of the logger) may precede the error line.
        lines = [line for line in err.splitlines() if not line.startswith(("WARNING", "INFO"))]
        ok = code == 2 and len(lines) == 1 and name in lines[0]
        ok = ok and lines[0].startswith(f"pointforge {argv[0]}: error: ")
        if not ok:
            failures.append((argv[0], code, err[-400:]))
    assert not failures, failures
