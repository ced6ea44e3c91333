"""Every ``pointforge`` command the docs show runs (README.md, docs/*.md, configs/*.yaml headers).

Commands are extracted from fenced and indented code blocks (lines starting ``pointforge ``,
``\\`` continuations joined) and from the ``#   pointforge ...`` lines of the config headers,
so a command added to the docs is tested without editing this file. Each runs in-process
(``pointforge.cli.main.main``) in a fresh working directory holding ``configs/`` and
``pointforge/weights/``, with

- its placeholders (``PLACEHOLDERS``) and its input files replaced by small real stand-ins
  (``tests/doc_standins.py``: photos from scikit-image, a tiny COCO json, Market-1501 names, an
  HPatches-layout folder, tiny checkpoints from 2-iteration runs);
- ``[optional]`` parts included and ``a|b`` alternatives taken at their first choice;
- budget overrides appended (``COMMON_BUDGET`` + ``BUDGET[config]``: 2 iterations, small images,
  no workers) and a few option values shrunk (``OPTION_BUDGET``).

A placeholder the tables do not know fails, naming the doc file and line. Commands that cannot
run here are listed in ``CANNOT_RUN`` with the reason and the check that is done instead.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pointforge.cli import launch
from pointforge.cli.main import build_parser, main

sys.path.insert(0, str(Path(__file__).resolve().parent))
import doc_standins as si

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DocCommand:
    source: str  # repository-relative file
    line: int  # 1-based line of the command's first line
    text: str  # the command, continuations joined

    def __str__(self) -> str:
        return f"{self.source}:{self.line}"


def _joined(lines: list[str], i: int, clean: Callable[[str], str]) -> tuple[str, int]:
    text = clean(lines[i])
    while text.rstrip().endswith("\\") and i + 1 < len(lines):
        i += 1
        text = text.rstrip()[:-1].rstrip() + " " + clean(lines[i]).strip()
    return text.strip(), i


def markdown_commands(path: Path) -> list[DocCommand]:
    """``pointforge ...`` lines of the fenced and the 4-space indented code blocks."""
    lines, out, fenced, code_ok = path.read_text().splitlines(), [], False, True
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced, i = not fenced, i + 1
            continue
        in_code = fenced or (line.startswith("    ") and code_ok)
        if in_code and line.strip().startswith("pointforge "):
            text, j = _joined(lines, i, str)
            out.append(DocCommand(str(path.relative_to(ROOT)), i + 1, text))
            i = j
        code_ok = not line.strip() or (line.startswith("    ") and code_ok)
        i += 1
    return out


def header_commands(path: Path) -> list[DocCommand]:
    """``#   pointforge ...`` lines of a config's leading comment block."""
    lines, out, i = path.read_text().splitlines(), [], 0
    while i < len(lines) and lines[i].startswith("#"):
        if re.match(r"#\s+pointforge ", lines[i]):
            text, j = _joined(lines, i, lambda s: s.lstrip("#"))
            out.append(DocCommand(str(path.relative_to(ROOT)), i + 1, text))
            i = j
        i += 1
    return out


def documented_commands() -> list[DocCommand]:
    cmds = markdown_commands(ROOT / "README.md")
    for path in sorted((ROOT / "docs").glob("*.md")):
        cmds += markdown_commands(path)
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cmds += header_commands(path)
    return cmds


def _link(target: Path) -> Callable[[Path], object]:
    def build(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)

    return build


def _hardlink(target: Path) -> Callable[[Path], object]:
    """A hard link: ``eval`` resolves the weights' run folder through symlinks, and must write
    beside the written path, not into the shared cache."""

    def build(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.hardlink_to(target)
        except OSError:
            shutil.copy(target, path)

    return build


# -- what each placeholder stands for -------------------------------------------------------
# Placeholder token -> its stand-in. Slot-dependent ones (DIR, CKPT) depend on the option or
# key they fill: see INPUT_OPTIONS / INPUT_KEYS / the checkpoint rule in `_checkpoint`.
PLACEHOLDERS: dict[str, str] = {
    "DIR": "an output folder after --out/--draw; else the input of its key (INPUT_KEYS)",
    "CKPT": "a checkpoint of the command's family (_checkpoint)",
    "CFG": "configs/magicpoint_shapes.yaml (the launch examples' config)",
    "N": "200 (--max-keypoints)",
    "H": "120 (--input-size H W)",
    "W": "160",
    "COPY": "a missing folder: photo-set sources cannot be faked (CANNOT_RUN)",
    "CLONE": "a fake ChessPiecesv23 clone (Roboflow COCO layout, doc_standins.chess_folder)",
    "RAY_ADDRESS": "none: needs a Ray cluster (CANNOT_RUN)",
}
VALUES = {"N": "200", "H": "120", "W": "160", "CFG": "configs/magicpoint_shapes.yaml"}
# Input files named in the docs, by name: path -> builder writing it at that path.
NAMED_INPUTS: dict[str, Callable[[Path], object]] = {
    "photo.jpg": si.image_file,
    "photo1.jpg": si.image_file,
    "photo2.png": lambda p: si.image_file(p, 1),
    "digit.png": si.digit_png,
    "query.jpg": si.reid_query,
    "gallery/": si.reid_gallery,
    "superpoint_v1.pth": si.magicleap_v1,
    "a.jpg": lambda p: si.warped_pair(p, p.with_name("b.jpg")),
    "b.jpg": lambda p: si.warped_pair(p.with_name("a.jpg"), p),
    "H.txt": si.homography_txt,
    "space.yaml": si.tune_space,
}
OUTPUT_OPTIONS = ("--out", "--output-dir", "--draw")
INPUT_OPTIONS: dict[str, Callable[[Path], object]] = {"--images": si.photo_folder}
# Override key -> data.name -> builder of the folder/file it names.
INPUT_KEYS: dict[str, dict[str, Callable[[Path], object]]] = {
    "data.root": {
        "image_folder": si.image_folder,
        "market1501": si.market1501,
        "reid_folder": si.reid_folder,
        "chess": si.chess_folder,
        "nuscenes": lambda p: p.mkdir(parents=True),  # config check only (CANNOT_RUN)
    },
    "data.path": {"hpatches": si.hpatches, "homography_pairs": si.photo_folder},
    "data.train.json": {"coco": si.coco_json},
    "data.val.json": {"coco": si.coco_json},
    "data.train.images": {"coco": si.coco_images, "yolo": si.yolo_images},
    "data.val.images": {"coco": si.coco_images, "yolo": si.yolo_images},
    "data.train.root": {"voc": si.voc},
    "data.val.root": {"voc": si.voc},
    "data.classes_file": {"yolo": si.class_names},
}
STAGE1 = "training_state/superpoint/checkpoints/last.pth"  # superpoint_photoset_cpu's weights
# Relative paths a config itself reads (configs/<stem>.yaml data keys) -> builder.
CONFIG_INPUTS: dict[str, dict[str, Callable[[Path], object]]] = {
    "superpoint_train": {"data/photos/train": si.photo_folder, "data/photos/val": si.photo_folder},
    "superpoint_photoset_cpu": {
        STAGE1: _link(ROOT / STAGE1),
        "data/photoset/train": si.photo_folder,
        "data/photoset/val": si.photo_folder,
    },
    "superpoint_lite_distill_cpu": {
        "data/photoset/train": si.photo_folder,
        "data/photoset/val": si.photo_folder,
    },
    "centernet_chess": {"../shared/data/chess": si.chess_folder},
}
# Label folders the superpoint configs read: made by export-labels on their photos.
LABELS = {
    "superpoint_train": ("data/photos/train", "data/labels/train"),
    "superpoint_photoset_cpu": ("data/photoset/train", "data/labels/photoset_train_r2"),
    "superpoint_lite_distill_cpu": ("data/photoset/train", "data/labels/photoset_train_r2"),
}

# -- budgets ---------------------------------------------------------------------------------
COMMON_BUDGET = [
    "device=cpu",
    "data.num_workers=0",
    "solver.max_iter=2",
    "train.checkpoint_period=1",
    "train.eval_period=0",
    "train.progress_bar=false",
]
KEYPOINTS = ["data.batch_size=2", "data.image_size=[64,80]"]
SUPERPOINT = [*KEYPOINTS, "homography_eval.pairs_per_image=1", "homography_eval.num_visualize=1"]
REID = ["reid.p=2", "reid.k=2", "data.batch_size=4", "data.image_size=[32,16]"]
DETECTION = ["data.batch_size=2", "data.image_size=[64,64]"]
EVAL_MP = ["eval.num_images=2", "eval.num_visualize=1", "eval.baselines=[harris]"]
BUDGET: dict[str, list[str]] = {
    "magicpoint_shapes": [*KEYPOINTS, *EVAL_MP],
    "magicpoint_shapes_quick": [*KEYPOINTS, *EVAL_MP],
    "magicpoint_shapes_cpu": [*KEYPOINTS, *EVAL_MP],
    "superpoint_train": SUPERPOINT,
    "superpoint_photoset_cpu": SUPERPOINT,
    "superpoint_lite_distill_cpu": SUPERPOINT,
    "superpoint_cpu": SUPERPOINT,
    "export_labels": ["adaptation.num_homographies=2", "data.image_size=[64,80]"],
    "eval_homography": [
        "data.image_size=[64,80]",
        "homography_eval.pairs_per_image=1",
        "homography_eval.num_visualize=1",
    ],
    "resnet_digits": ["data.batch_size=8", "data.image_size=[32,32]"],
    "centernet_shapes": [*DETECTION, "data.num_train=4", "data.num_val=2"],
    "centernet_coco": DETECTION,
    "centernet_chess": DETECTION,
    "reid_synthetic": [*REID, "data.num_train_ids=4", "data.num_test_ids=2"],
    "reid_market": REID,
    "centerfusion_synthetic": [
        "data.batch_size=2",
        "data.train_size=4",
        "data.val_size=2",
        "data.image_size=[64,128]",
    ],
    "centerfusion_nuscenes": [],
}
OPTION_BUDGET = {"--num": "3", "--nproc": "2", "--trials": "2", "--height": "64", "--width": "80"}
BUDGETED = ("train", "eval", "export-labels", "launch", "tune")

# -- what cannot run here ---------------------------------------------------------------------
# (command prefix, reason, check done instead)
CANNOT_RUN: list[tuple[str, str, str]] = [
    (
        "data photo-set",
        "reads local clones of the photo set's source repositories, whose photos must match "
        "the set's SHA-256 manifest: no stand-in can be made",
        "the command's own validation: a missing --source folder fails naming the source",
    ),
    (
        "launch --nproc 8 --nnodes 2",
        "needs a second node at the given master / rendezvous address",
        "the torchrun arguments are built and the config loads",
    ),
    (
        "tune",
        "a Ray sweep starts a local cluster (~45 s on 2 cores even at 2 trials of 2 iterations) "
        "and --address needs a running one; tests/cli/test_tune_cmds.py runs a real sweep",
        "the arguments parse, the search space loads and every trial's config validates",
    ),
    (
        "train configs/centerfusion_nuscenes.yaml",
        "reads the nuScenes devkit tables, sweeps and radar files (GBs; no small fake yet)",
        "`pointforge config` with exactly the same arguments validates",
    ),
]


def argv_of(cmd: DocCommand) -> list[str]:
    """The documented command as argv: comment dropped, ``[x]`` included, ``a|b`` -> ``a``."""
    text = re.sub(r"\s#.*$", "", cmd.text)
    text = re.sub(r"\s{2,}\(.*\)$", "", text)  # a header's trailing "(what this is)"
    tokens = [t if "=" in t else t.strip("[]") for t in shlex.split(text)]
    tokens = [t.split("|")[0] if "|" in t and "=" not in t else t for t in tokens if t]
    assert tokens[0] == "pointforge", cmd
    return tokens[1:]


def _cannot_run(argv: list[str]) -> tuple[str, str, str] | None:
    joined = " ".join(argv)
    return next((c for c in CANNOT_RUN if joined.startswith(c[0])), None)


def _data_name(argv: list[str], config: str | None) -> str | None:
    for tok in argv:
        if tok.startswith("data.name="):
            return tok.split("=", 1)[1]
    if config is None:
        return None
    import yaml

    data = yaml.safe_load((ROOT / config).read_text()).get("data") or {}
    return data.get("name")


def _config_of(argv: list[str]) -> str | None:
    return next((t for t in argv if t.startswith("configs/") and t.endswith(".yaml")), None)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Expensive stand-ins made once per module: tiny checkpoints and label folders."""
    return {"root": tmp_path_factory.mktemp("doc_cache")}


def _tiny_checkpoint(cache: dict[str, Path], config: str) -> Path:
    """``final.pth`` of a 2-iteration run of ``configs/<config>.yaml`` (made once)."""
    key = f"ckpt:{config}"
    if key not in cache:
        run = cache["root"] / f"run_{config}"
        extra = []
        if config == "reid_market":
            extra = [f"data.root={si.market1501(cache['root'] / 'market')}"]
        argv = ["train", f"{ROOT}/configs/{config}.yaml", "--output-dir", str(run)]
        assert main([*argv, *COMMON_BUDGET, *BUDGET[config], *extra]) == 0, config
        cache[key] = run / "checkpoints" / "final.pth"
    return cache[key]


def _labels(cache: dict[str, Path], photos: Path, out: Path) -> None:
    """Homographic-adaptation labels of ``photos`` at ``out`` (made once, copied)."""
    if "labels" not in cache:
        cache["labels"] = cache["root"] / "labels"
        argv = ["export-labels", f"{ROOT}/configs/export_labels.yaml", "--images", str(photos)]
        argv += ["--out", str(cache["labels"]), "device=cpu", *BUDGET["export_labels"]]
        assert main(argv) == 0
    shutil.copytree(cache["labels"], out)


def _checkpoint(cmd: DocCommand, argv: list[str], value: str, cache: dict[str, Path]) -> str:
    """The checkpoint that ``--weights``/CKPT names: a shipped file as written, else a tiny run
    of the command's config (``runs/<stem>/...`` -> configs/<stem>.yaml when it exists), else
    the shipped weights of the command's family (re-ID for retrieve / reid.onnx)."""
    if (ROOT / value).is_file():
        return value
    stem = re.match(r"runs/([\w-]+)/", value)
    config = _config_of(argv)
    if stem is not None:  # a run's checkpoint: put at the written path (eval writes beside it)
        name = stem.group(1)
        if not (ROOT / "configs" / f"{name}.yaml").is_file():
            assert config is not None, f"{cmd}: which config trained {value}?"
            name = Path(config).stem
        return _place(value, _hardlink(_tiny_checkpoint(cache, name)))
    if config is not None and config != "configs/export_labels.yaml":
        return str(_tiny_checkpoint(cache, Path(config).stem))
    if argv[0] == "retrieve" or "reid.onnx" in argv:
        return str(ROOT / "pointforge/weights/reid_synthetic.pth")
    if argv[0] == "export-labels":
        return str(ROOT / "pointforge/weights/magicpoint_shapes.pth")
    if value in ("CKPT",):
        return str(ROOT / "pointforge/weights/superpoint.pth")
    raise AssertionError(f"{cmd}: no checkpoint stand-in for {value!r}")


def _place(value: str, build: Callable[[Path], object]) -> str:
    """Build an input at the path the doc writes (a relative path or a placeholder such as
    ``DIR``, under the working directory), or, for an absolute path, at a local stand-in;
    returns the token to pass."""
    rel = "standin" + re.sub(r"\W", "_", value) if value.startswith("/") else value
    if not (Path.cwd() / rel).exists():
        build(Path.cwd() / rel)
    return rel


def resolve(cmd: DocCommand, cache: dict[str, Path]) -> list[str]:
    """argv with every placeholder and input replaced by a stand-in, plus the budget."""
    argv = [VALUES.get(t, t) for t in argv_of(cmd)]
    out: list[str] = []
    config = _config_of(argv)
    data_name = _data_name(argv, config)
    for i, tok in enumerate(argv):
        prev = argv[i - 1] if i else ""
        key, eq, value = tok.partition("=")
        handled = True
        if prev in OPTION_BUDGET:
            tok = OPTION_BUDGET[prev]
        elif prev in OUTPUT_OPTIONS or prev == "--address":
            pass  # an output (created by the command) / dropped (CANNOT_RUN)
        elif prev in INPUT_OPTIONS:
            tok = _place(tok, INPUT_OPTIONS[prev])
        elif prev == "--weights" or (argv[0] == "retrieve" and i == 1):
            tok = _checkpoint(cmd, argv, tok, cache)
        elif prev == "--source":
            tok = f"{key}={Path.cwd() / 'missing'}" if eq else _place(tok, si.chess_folder)
        elif eq and key in INPUT_KEYS:
            builders = INPUT_KEYS[key]
            assert data_name in builders, f"{cmd}: no stand-in for {key} of data.name={data_name}"
            tok = f"{key}={_place(value, builders[data_name])}"
        elif tok in NAMED_INPUTS:
            _place(tok, NAMED_INPUTS[tok])
        elif tok in VALUES:
            tok = VALUES[tok]
        else:
            handled = False
        bad = re.findall(r"(?:^|=)([A-Z][A-Z0-9_]+)$", tok)
        assert handled or not bad, (
            f"{cmd}: unrecognised placeholder {bad[0]!r} in `{cmd.text}`: add it to "
            "PLACEHOLDERS / VALUES / INPUT_KEYS in tests/test_docs_commands.py"
        )
        out.append(tok)
    stem = Path(config).stem if config else None
    if stem is not None:
        for rel, build in CONFIG_INPUTS.get(stem, {}).items():
            if not (Path.cwd() / rel).exists():
                build(Path.cwd() / rel)
        if stem in LABELS:
            photos, labels = LABELS[stem]
            _labels(cache, Path.cwd() / photos, Path.cwd() / labels)
    if argv[0] in BUDGETED:
        assert stem in BUDGET, f"{cmd}: add a budget for {config} to BUDGET"
        out += [*COMMON_BUDGET, *BUDGET[stem]]
    return out


def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh working directory that looks like the repository root to the commands."""
    cwd = tmp_path / "repo"
    (cwd / "pointforge").mkdir(parents=True)
    (cwd / "configs").symlink_to(ROOT / "configs")
    (cwd / "pointforge" / "weights").symlink_to(ROOT / "pointforge" / "weights")
    monkeypatch.chdir(cwd)
    # `launch` starts `python -m pointforge` here: the package must win over ./pointforge/.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def _check_instead(
    cmd: DocCommand, argv: list[str], prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check done instead of running a CANNOT_RUN command (its third column)."""
    if prefix == "tune":
        from pointforge.tune.space import load_space, to_overrides

        args, _ = build_parser().parse_known_args(argv)
        trial = to_overrides({p.key: p.args[0] for p in load_space(args.space)})
        assert main(["config", args.config, *args.overrides, *trial]) == 0, cmd
    elif prefix == "data photo-set":
        assert main(argv) == 2, cmd
        assert "--source" in capsys.readouterr().err, cmd
    elif prefix.startswith("launch"):
        args, extra = build_parser().parse_known_args(argv)
        args.overrides = [*args.overrides, *extra]
        assert "-m" in launch.torchrun_args(args), cmd
        assert main(["config", args.config, *args.overrides]) == 0, cmd
    else:  # `pointforge config` with exactly the documented arguments
        exact = [VALUES.get(t, t) for t in argv_of(cmd)[1:]]
        assert main(["config", *exact]) == 0, f"{cmd}: {capsys.readouterr().err}"


COMMANDS = documented_commands()
RAN: dict[str, int] = {}  # command text -> exit code of its run


def test_the_docs_show_commands() -> None:
    sources = {c.source for c in COMMANDS}
    assert len(COMMANDS) > 40 and "README.md" in sources and "docs/reid.md" in sources
    assert any(s.startswith("configs/") for s in sources)


@pytest.mark.parametrize("cmd", COMMANDS, ids=str)
def test_documented_command_runs(
    cmd: DocCommand,
    cache: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _workdir(tmp_path, monkeypatch)
    argv = resolve(cmd, cache)
    skip = _cannot_run(argv_of(cmd))
    if skip is not None:
        _check_instead(cmd, argv, skip[0], capsys)
        return
    key = " ".join(argv_of(cmd))
    if key in RAN:  # the same command at another doc line: one run answers for both
        assert RAN[key] == 0, f"{cmd}: failed at its first occurrence"
        return
    RAN[key] = -1
    code = main(argv)
    RAN[key] = code
    captured = capsys.readouterr()
    assert code == 0, f"{cmd}: `pointforge {' '.join(argv)}` failed:\n{captured.err[-3000:]}"
    for i, tok in enumerate(argv[:-1]):
        if tok in OUTPUT_OPTIONS:
            assert Path(argv[i + 1]).exists(), f"{cmd}: {tok} {argv[i + 1]} was not written"
