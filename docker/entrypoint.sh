#!/usr/bin/env bash
# Container entrypoint of the avhighlights images.
#   worker   (default) wait for the server, create the process work pool and the extract-and-score
#            deployment if missing, then run a Prefect process worker on the pool
#   watcher  wait for the server, then run the watched-folder service
#   anything else is run as given (e.g. `avhighlights score ...`, `bash`)
# Settings (environment): PREFECT_API_URL (required for worker/watcher), AVH_WORK_POOL, AVH_APP_DIR,
# AVH_WATCH_DIR, AVH_OUTPUT_DIR, AVH_QUARANTINE_DIR, AVH_STATE_DIR, AVH_METHOD, AVH_SERVER_WAIT_S.
set -euo pipefail

POOL="${AVH_WORK_POOL:-avhighlights-process}"
APP_DIR="${AVH_APP_DIR:-/app}"
PYTHON="${AVH_PYTHON:-python}"
export PREFECT_CLI_PROMPT=false
# the worker's health endpoint (--with-healthcheck) listens on every interface unless told otherwise
export PREFECT_WORKER_WEBSERVER_HOST="${PREFECT_WORKER_WEBSERVER_HOST:-127.0.0.1}"

wait_for_server() {
  : "${PREFECT_API_URL:?set PREFECT_API_URL, e.g. http://prefect-server:4200/api}"
  local deadline=$((SECONDS + ${AVH_SERVER_WAIT_S:-180}))
  until "$PYTHON" -c 'import os, urllib.request as u; u.urlopen(os.environ["PREFECT_API_URL"] + "/health", timeout=5)' \
      >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "avh-entrypoint: no Prefect server at $PREFECT_API_URL" >&2
      exit 1
    fi
    sleep 2
  done
}

ensure_pool_and_deployment() {
  "$PYTHON" -m prefect work-pool inspect "$POOL" >/dev/null 2>&1 \
    || "$PYTHON" -m prefect work-pool create "$POOL" --type process \
    || "$PYTHON" -m prefect work-pool inspect "$POOL" >/dev/null  # another worker created it meanwhile
  (cd "$APP_DIR" && "$PYTHON" -m prefect --no-prompt deploy --name extract-and-score --pool "$POOL")
}

role="${1:-worker}"
[[ $# -gt 0 ]] && shift
case "$role" in
  worker)
    wait_for_server
    ensure_pool_and_deployment
    exec "$PYTHON" -m prefect worker start --pool "$POOL" --type process "$@"
    ;;
  watcher)
    wait_for_server
    exec "$PYTHON" -m avhighlights watch \
      --folder "${AVH_WATCH_DIR:-/data/watch}" --out "${AVH_OUTPUT_DIR:-/data/outputs}" \
      --quarantine "${AVH_QUARANTINE_DIR:-/data/quarantine}" --state "${AVH_STATE_DIR:-/data/state}" \
      --method "${AVH_METHOD:-loudness}" "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
