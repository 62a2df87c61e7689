#!/usr/bin/env bash
# Prepare .gpu/ (ignored by git) for scripts/gpu_check.sh on a GPU machine that has PyTorch
# but no internet and receives only the working tree (at most 64 MiB):
#   .gpu/wheels/   the pure-Python packages its image lacks (open_clip_torch, ftfy, wcwidth,
#                  dominate), for its Python (PYTHON_VERSION, default 3.12), from pip here
#   .gpu/authors/  the authors' released code (github.com/Ysz2022/NeRCo) without its images
#                  and caches, for the benchmark's --authors columns
#
#   bash scripts/gpu_prepare.sh [--authors PATH]   # PATH: a checkout, or its git directory
#   bash scripts/gpu_prepare.sh --authors ~/src/NeRCo
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
AUTHORS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --authors) AUTHORS=${2:?--authors needs a path}; shift 2 ;;
    *) echo "error: unknown argument $1 (usage: bash scripts/gpu_prepare.sh [--authors PATH])" >&2
       exit 2 ;;
  esac
done
mkdir -p .gpu/wheels
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$PYTHON_VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d .gpu/wheels open_clip_torch==3.3.0 ftfy wcwidth dominate
if [ -n "$AUTHORS" ]; then
  rm -rf .gpu/authors && mkdir -p .gpu/authors
  if [ -d "$AUTHORS/.git" ] || [ -f "$AUTHORS/HEAD" ]; then  # a checkout, or a bare git dir
    git_dir=$AUTHORS; [ -d "$AUTHORS/.git" ] && git_dir=$AUTHORS/.git
    git --git-dir "$git_dir" archive HEAD | tar -x -C .gpu/authors
  else
    cp -r "$AUTHORS"/. .gpu/authors/
  fi
  [ -d .gpu/authors/models ] || { echo "error: $AUTHORS is not github.com/Ysz2022/NeRCo (no models/)" >&2; exit 2; }
  find .gpu/authors \( -name __pycache__ -o -name .git \) -prune -exec rm -rf {} +
  find .gpu/authors -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.bmp' \) -delete
fi
du -sh .gpu
echo "carry .gpu to the GPU machine and run: bash scripts/gpu_check.sh OUTDIR"
