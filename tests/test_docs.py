"""The repository explains itself: docs exist, code cites them, the config reference is current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_code_cites_only_docs_that_exist() -> None:
    cited: set[str] = set()
    for folder in ("pointforge", "configs", "benchmarks", "tools", "tests"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".yaml") or path.name == "test_docs.py":
                continue
            text = path.read_text()
            assert "DESIGN.md" not in text, f"{path} cites a file users cannot read"
            cited |= set(re.findall(r"docs/[\w./-]+\.md", text))
    assert cited, "expected the code to cite docs/"
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, missing


def test_config_reference_is_generated_from_the_current_schema() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_config_reference.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    text = (ROOT / "docs" / "config_reference.md").read_text()
    for key in ("`descriptor_loss.lambda_d`", "`classification.label_smoothing`", "`data.root`"):
        assert key in text
