#!/usr/bin/env bash
# PgBouncer (Debian's package) in transaction mode in front of a server made by postgres.sh, on a
# free loopback port, for the tests of a fleet behind a pooler.
#
#   eval "$(bash .ci/pgbouncer.sh start "$CREDENTIAL_TEST_POSTGRES_URL" "$CREDENTIAL_TEST_POSTGRES_STATE")"
#   bash .ci/pgbouncer.sh stop "$CREDENTIAL_TEST_PGBOUNCER_STATE"
#
# `start` prints:
#   CREDENTIAL_TEST_PGBOUNCER_URL    the server URL's user, password and database through the
#                                    pooler, TLS with the server's certificate (verify-full)
#   CREDENTIAL_TEST_PGBOUNCER_STATE  its directory: configuration, user list, log, pid file
# The pooler keeps at most 10 server connections per database and user; like the server, it runs
# as the `postgres` user when started by root.
set -euo pipefail
source "$(dirname "$0")/service-helpers.sh"

start() {
  local server_url="${1:?usage: pgbouncer.sh start SERVER_URL SERVER_STATE}"
  local server_state="${2:?usage: pgbouncer.sh start SERVER_URL SERVER_STATE}"
  if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >&2
  fi
  local bin
  bin="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

  local parsed user password port dbname
  parsed="$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.unquote(p.username), u.unquote(p.password), p.port, p.path.lstrip("/"))' "$server_url")"
  read -r user password port dbname <<<"$parsed"

  local state run_as owner listen_port
  state="$(mktemp -d /tmp/credential-pgbouncer.XXXXXX)"
  chmod 0755 "$state"
  service_user
  listen_port="$(free_port)"
  printf '"%s" "%s"\n' "$user" "$password" >"$state/userlist.txt"
  chmod 0600 "$state/userlist.txt"
  cat >"$state/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $listen_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $state/userlist.txt
pool_mode = transaction
default_pool_size = 10
max_client_conn = 1000
client_tls_sslmode = require
client_tls_key_file = $server_state/server.key
client_tls_cert_file = $server_state/server.crt
server_tls_sslmode = verify-ca
server_tls_ca_file = $server_state/ca.crt
logfile = $state/pgbouncer.log
pidfile = $state/pgbouncer.pid
EOF
  chown "$owner" "$state" "$state/userlist.txt" "$state/pgbouncer.ini"
  "${run_as[@]}" "$bin" -d "$state/pgbouncer.ini" >&2
  for _ in $(seq 1 100); do
    if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
      "$listen_port" 2>/dev/null; then
      break
    fi
    sleep 0.05
  done

  local url="postgres://$user:$password@localhost:$listen_port/$dbname?sslmode=verify-full&sslrootcert=$server_state/ca.crt"
  printf 'export CREDENTIAL_TEST_PGBOUNCER_URL=%q\n' "$url"
  printf 'export CREDENTIAL_TEST_PGBOUNCER_STATE=%q\n' "$state"
}

stop() {
  local state="${1:?usage: pgbouncer.sh stop STATE_DIR}"
  # An immediate shutdown: close every connection, stop.
  stop_pid "$state/pgbouncer.pid" TERM 100 0.05
  rm -rf "$state"
}

case "${1:-}" in
  start) start "${2:-}" "${3:-}" ;;
  stop) stop "${2:-}" ;;
  *)
    echo "usage: pgbouncer.sh start SERVER_URL SERVER_STATE | stop STATE_DIR" >&2
    exit 2
    ;;
esac
