#!/usr/bin/env bash
# Download the production GGUF (Devstral Small 2, 24B, Q4_K_M by default) into ./models for the compose file's
# gguf profile. Real deployments only: MindFu's tests and its embedded default never download weights.
#   scripts/download-model.sh [QUANT] [DEST]        e.g. scripts/download-model.sh Q5_K_M /srv/models
set -euo pipefail

QUANT="${1:-Q4_K_M}"
DEST="${2:-$(dirname "$0")/../models}"
REPO="${GGUF_REPO:-unsloth/Devstral-Small-2-24B-Instruct-2512-GGUF}"
FILE="${GGUF_FILE:-Devstral-Small-2-24B-Instruct-2512-${QUANT}.gguf}"
URL="https://huggingface.co/${REPO}/resolve/main/${FILE}"

mkdir -p "$DEST"
target="$DEST/$FILE"
if [[ -s "$target" ]]; then
  echo "$target is already there"
  exit 0
fi
echo "downloading $URL"
headers=()
if [[ -n "${HF_TOKEN:-}" ]]; then headers=(-H "Authorization: Bearer $HF_TOKEN"); fi
# resumable, into a partial file that is renamed only once complete
curl -fL --retry 5 --retry-delay 5 -C - "${headers[@]}" -o "$target.part" "$URL"
head -c 4 "$target.part" | grep -q GGUF || { echo "the download is not a GGUF file" >&2; exit 1; }
mv "$target.part" "$target"
echo "saved $target; set GGUF_FILE=$FILE in .env"
