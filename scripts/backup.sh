#!/usr/bin/env bash
# Back up a MindFu deployment: a PostgreSQL dump (conversations, documents, training jobs), a snapshot of
# every Qdrant collection, and the data directory (spool, training artifacts, MLflow when local).
#   scripts/backup.sh [DEST]            DEST defaults to ./backups/<UTC timestamp>
# Settings come from the environment (as in .env): DATABASE_URL or POSTGRES_*; QDRANT_URL; DATA_DIR or the
# compose volume (COMPOSE=1 runs each step inside the compose services).
set -euo pipefail

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
dest="${1:-$(dirname "$0")/../backups/$stamp}"
mkdir -p "$dest"
QDRANT_URL="${QDRANT_URL:-http://127.0.0.1:6333}"
DATABASE_URL="${DATABASE_URL:-postgresql://${POSTGRES_USER:-mindfu}:${POSTGRES_PASSWORD:-mindfu}@127.0.0.1:5432/${POSTGRES_DB:-mindfu}}"

echo "PostgreSQL -> $dest/postgres.dump"
if [[ "${COMPOSE:-0}" == "1" ]]; then
  docker compose exec -T postgres pg_dump -U "${POSTGRES_USER:-mindfu}" -d "${POSTGRES_DB:-mindfu}" -Fc > "$dest/postgres.dump"
else
  pg_dump "$DATABASE_URL" -Fc -f "$dest/postgres.dump"
fi

echo "Qdrant snapshots -> $dest/qdrant"
mkdir -p "$dest/qdrant"
collections="$(curl -fsS "$QDRANT_URL/collections" | python3 -c 'import json,sys; print(" ".join(c["name"] for c in json.load(sys.stdin)["result"]["collections"]))')"
for collection in $collections; do
  name="$(curl -fsS -X POST "$QDRANT_URL/collections/$collection/snapshots?wait=true" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["name"])')"
  curl -fsS -o "$dest/qdrant/$collection.snapshot" "$QDRANT_URL/collections/$collection/snapshots/$name"
  curl -fsS -X DELETE "$QDRANT_URL/collections/$collection/snapshots/$name" > /dev/null
  echo "  $collection"
done

echo "data directory -> $dest/data.tar.gz"
if [[ "${COMPOSE:-0}" == "1" ]]; then
  volume="${COMPOSE_PROJECT_NAME:-$(basename "$PWD")}_mindfu-data"
  docker run --rm -v "$volume:/data:ro" busybox tar czf - -C /data . > "$dest/data.tar.gz"
else
  tar czf "$dest/data.tar.gz" -C "${DATA_DIR:-${MINDFU_DATA_DIR:-$HOME/.local/share/mindfu}}" .
fi
echo "backup complete: $dest"
