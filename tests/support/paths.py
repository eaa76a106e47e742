"""Where the repository and the tests' artifacts are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Figures and logs tests leave behind for people (docs/reliability.md is made from them).
ARTIFACTS = ROOT / "artifacts"
