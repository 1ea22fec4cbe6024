"""Shared paths for the package's tests: the repository root, its fixtures, and the
`giftrank` release binary that the CLI comparisons run (built by `cargo test --release`
or `cargo build --release`; `GIFTRANK_BIN` overrides it)."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def giftrank_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("GIFTRANK_BIN", ROOT / "target" / "release" / "giftrank"))
    if not path.exists():
        pytest.fail(f"no giftrank binary at {path}: run `cargo build --release` first")
    return path


def run_eval(binary, bundle, data, label, out, *extra):
    """`giftrank eval ... --json out`, returning the JSON text."""
    args = [str(binary), "eval", "--bundle", str(bundle), "--data", str(data),
            "--label", label, "--json", str(out), *extra]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out.read_text()
