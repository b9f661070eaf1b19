# Sourced by the bench scripts: installs what is missing and sets $strata to
# a release build (or to $STRATA_BIN, to measure a binary built earlier).
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
if [ -n "${STRATA_BIN:-}" ]; then
  strata=$STRATA_BIN
else
  cargo build --release --locked -q -p strata
  strata="$CARGO_TARGET_DIR/release/strata"
fi
