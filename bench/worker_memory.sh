#!/usr/bin/env bash
# Peak memory (max RSS) of one `lore worker` running a real queued job, and of an in-process
# `lore ingest` of the same files, for docs/deploy.md's sizing. Needs PostgreSQL and Redis:
#   PY=.venv/bin/python bash bench/worker_memory.sh [DIR]
# DIR defaults to data/corpus. PG (a server URL without database) and REDIS override the local
# servers; the database lore_bench_<pid> is created and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-data/corpus}
PG=${PG:-postgresql+asyncpg://postgres@127.0.0.1:5432}
REDIS=${REDIS:-redis://127.0.0.1:6379/14}
PY=${PY:-python}
DB=lore_bench_$$
WORK=$(mktemp -d)

sql() {
    $PY -c 'import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    await conn.execute(sys.argv[2])
    await conn.close()
asyncio.run(main())' "${PG/+asyncpg/}/postgres" "$1"
}
sql "create database $DB"
trap 'rm -rf "$WORK"; sql "drop database if exists $DB with (force)"' EXIT

export LORE_DATABASE__URL=$PG/$DB LORE_QUEUE__REDIS_URL=$REDIS LORE_QUEUE__NAME=lore:bench:$$ \
    LORE_QUEUE__WORKERS_PER_JOB=1 LORE_DATA_DIR=$WORK/worker HF_HUB_OFFLINE=1
$PY -m cli db upgrade >/dev/null
$PY -m cli ingest "$DIR" --queue --json
echo "== lore worker --burst (one queued job of $DIR)"
/usr/bin/time -v $PY -m cli worker --burst 2>"$WORK/worker.time" >/dev/null || { cat "$WORK/worker.time"; exit 1; }
grep -E "Maximum resident|Elapsed" "$WORK/worker.time"
grep -c " ingested " "$WORK/worker.time" | sed 's/^/documents ingested: /'

echo "== lore ingest (in process, SQLite and Edge under a fresh data dir)"
env -u LORE_DATABASE__URL -u LORE_QUEUE__REDIS_URL LORE_DATA_DIR=$WORK/inprocess \
    /usr/bin/time -v $PY -m cli ingest "$DIR" --json 2>"$WORK/ingest.time" >/dev/null
grep -E "Maximum resident|Elapsed" "$WORK/ingest.time"
