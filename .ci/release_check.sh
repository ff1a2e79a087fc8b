#!/usr/bin/env bash
# The release as a newcomer meets it: build the sdist and wheel, check them (twine check), install the wheel into
# a fresh virtual environment (nothing of this checkout on its path) and run the command from it: --help, the quick
# demo, and one prediction of the shared real demo genes when ../shared is there. Run by .ci/run; by hand:
#   bash .ci/release_check.sh        (needs python3 with 'build' and 'twine', e.g. the dev environment)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python -m build --sdist --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; exit 1; }
python -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)
version=$(python -c 'import sys; sys.path.insert(0, "src"); import chromoformer; print(chromoformer.__version__)')
case "$wheel" in *"-$version-"*) ;; *) echo "release_check: wheel $wheel is not version $version" >&2; exit 1 ;; esac

python3 -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip --quiet --disable-pip-version-check)
# torch as install.sh takes it (the tested version; $CHROMOFORMER_TORCH_INDEX for PyTorch's CPU-only index), then
# the wheel with the rest of its dependencies
if [ -n "${CHROMOFORMER_TORCH_INDEX:-}" ]; then
  "${pip[@]}" install torch==2.13.0 --index-url "$CHROMOFORMER_TORCH_INDEX"
else
  "${pip[@]}" install torch==2.13.0
fi
"${pip[@]}" install "$wheel"
cd "$work"  # away from the checkout: the installed package, not src/, answers
bin=$work/venv/bin
"$bin/chromoformer" --version
"$bin/chromoformer" --help >/dev/null
"$bin/python" -c 'import chromoformer, pathlib, sys; p = pathlib.Path(chromoformer.__file__); sys.exit("src" in p.parts)'
"$bin/chromoformer" demo --quick -o "$work/demo" --epochs 1 --genes 48
demo=$repo/../shared/reference-demo
if [ -d "$demo" ]; then
  "$bin/chromoformer" predict -m "$demo/demo_meta.csv" -d "$demo/demo_data" -k "$demo/scrambled-clf-fold1.pt" \
    -o "$work/pred.csv" --num-workers 0
  test "$(wc -l <"$work/pred.csv")" -eq 101
else
  echo "release_check: ../shared/reference-demo absent; the prediction of the real demo genes is skipped"
fi
echo "release_check: $(basename "$wheel") builds, passes twine check, installs and runs in a fresh venv"
