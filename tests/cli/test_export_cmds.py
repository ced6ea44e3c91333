"""``pointforge export-labels``: runs, refuses a non-empty --out without --resume, resumes."""

from __future__ import annotations

from pointforge.cli.main import main
from pointforge.data.datasets.photo_folder import write_sample_photos
from pointforge.data.label_shards import LabelStore

ARGS = [
    "configs/export_labels.yaml",
    "device=cpu",
    "data.image_size=[64,80]",
    "adaptation.num_homographies=2",
]


def test_export_labels_cli_refuses_non_empty_out_and_resumes(tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "labels"
    write_sample_photos(photos, ["camera", "coins"])
    assert main(["export-labels", *ARGS, "--images", str(photos), "--out", str(out)]) == 0
    assert "labelled 2 of 2 images" in capsys.readouterr().out
    assert LabelStore(out).complete and len(LabelStore(out)) == 2

    rc = main(["export-labels", *ARGS, "--images", str(photos), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and str(out) in err and "--resume" in err

    rc = main(["export-labels", *ARGS, "--images", str(photos), "--out", str(out), "--resume"])
    assert rc == 0 and "already done 1" in capsys.readouterr().out
    assert len(LabelStore(out)) == 2


def test_export_labels_cli_names_an_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(
        ["export-labels", *ARGS, "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]
    )
    assert rc == 2 and "holds no images" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
