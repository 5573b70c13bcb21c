#!/usr/bin/env bash
# A throwaway venv with LiteLLM's proxy, outside the project, for `bench/relay.py --via litellm`
# (the side-by-side comparison in the README). The version is pinned: the one measured.
set -euo pipefail
VENV="${LITELLM_VENV:-/tmp/litellm-bench}"
VERSION="${LITELLM_VERSION:-1.100.5}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet "litellm[proxy]==${VERSION}"
echo "LiteLLM ${VERSION} in ${VENV}: .venv/bin/python bench/relay.py --via litellm --litellm ${VENV}/bin/litellm"
