#!/usr/bin/env bash
# Set chromoformer up on Debian or Ubuntu: the system packages it needs, a virtual environment, the package.
#
#   bash install.sh                 # for using it: the preprocessing tools, then .venv with chromoformer[preprocess]
#   bash install.sh --extras dev    # for its tests too: every tool and package the test suite uses
#
# Then `. .venv/bin/activate` puts `chromoformer` (and snakemake) on the PATH. The README's two commands are
# these; .ci/run runs them as written.
#
# Options: --venv DIR (default .venv, or $CHROMOFORMER_VENV), --extras LIST (comma-separated extras of
# pyproject.toml; default preprocess), --no-system (skip the apt packages: install them yourself). As root
# the packages are installed with apt-get; as another user through sudo, which asks for your password (or
# run it with --no-system after an administrator installed the packages it names).
#
# torch: PyPI's torch for Linux is the CUDA build (several GB of CUDA libraries with it; it runs on a
# CPU-only machine too). On a machine without a GPU, the CPU-only build is much smaller: set
# CHROMOFORMER_TORCH_INDEX=https://download.pytorch.org/whl/cpu to take torch from PyTorch's CPU index.
set -euo pipefail
cd "$(dirname "$0")"

venv=${CHROMOFORMER_VENV:-.venv}
extras=preprocess
system=1
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv=$2; shift 2 ;;
    --extras) extras=$2; shift 2 ;;
    --no-system) system=0; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Debian packages: what the demo and preprocessing need; the tests need more (bedtools as a reference,
# chromium renders the HTML report, subread's featureCounts writes real count tables, a real single-node
# SLURM with accounting for the cluster tests; the tests start and stop those daemons themselves).
packages=(chromhmm-example bedtools samtools)
case ",$extras," in *,dev,*)
  packages+=(sambamba chromium subread slurm-wlm slurmdbd munge mariadb-server) ;;
esac
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "install.sh: $python is missing or older than 3.10; install Python >= 3.10 (or set PYTHON=...)" >&2
  exit 1
fi
"$python" -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)

if [ "$system" = 1 ]; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
      if ! command -v sudo >/dev/null; then
        echo "install.sh: not root and no sudo: ask an administrator to run" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        echo "then run: bash install.sh --no-system" >&2
        exit 1
      fi
      sudo=(sudo)
    fi
    echo "install.sh: apt-get install ${missing[*]}"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  fi
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
"${pip[@]}" install --upgrade pip
if [ -n "${CHROMOFORMER_TORCH_INDEX:-}" ]; then
  "${pip[@]}" install torch==2.13.0 --index-url "$CHROMOFORMER_TORCH_INDEX"
else
  "${pip[@]}" install torch==2.13.0   # the version the tests run on; any torch >= 2.1 works
fi
"${pip[@]}" install -e ".[$extras]"
echo "install.sh: done; '. $venv/bin/activate' puts chromoformer on the PATH ($("$venv/bin/chromoformer" --version))"
