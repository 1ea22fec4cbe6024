#!/usr/bin/env bash
# The Python package's CI step (called by .ci/run after `cargo test --release`):
# a venv in target/python-venv with the pinned requirements, the extension built by maturin
# in the same target directory, release profile and dependency features as the tests
# (`--features ci-unify`, see python/Cargo.toml), so that only PyO3, rust-numpy and the
# extension crate compile, then pytest, the Spark example included.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/python-venv
t0=$SECONDS
if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r tools/requirements.txt -r python/requirements-test.txt
echo "  venv and requirements: $((SECONDS - t0)) s"

t0=$SECONDS
rm -rf target/wheels
"$VENV/bin/maturin" build --release --features ci-unify -m python/Cargo.toml --out target/wheels \
    --interpreter "$VENV/bin/python"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps \
    target/wheels/giftrank-*.whl
echo "  extension build and install: $((SECONDS - t0)) s"

t0=$SECONDS
# Run from the tests directory, so `import giftrank` is the installed wheel.
(cd python/tests && GIFTRANK_REQUIRE_SPARK=1 GIFTRANK_BIN="$PWD/../../target/release/giftrank" \
    "../../$VENV/bin/python" -m pytest -q -p no:cacheprovider)
echo "  pytest: $((SECONDS - t0)) s"
