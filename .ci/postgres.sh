#!/usr/bin/env bash
# A throwaway PostgreSQL server on a free loopback port, with TLS, for the PostgreSQL tests.
#
#   eval "$(bash .ci/postgres.sh start)"   # installs the server if missing, starts it, prints exports
#   bash .ci/postgres.sh stop "$CREDENTIAL_TEST_POSTGRES_STATE"
#
# `start` prints:
#   CREDENTIAL_TEST_POSTGRES_URL    a verify-full URL for the `credential` database
#   CREDENTIAL_TEST_POSTGRES_STATE  the server's directory: data, certificates (ca.crt, and
#                                   other-ca.crt which signed nothing), `restart` and the log
# The server runs as the `postgres` user when started by root (PostgreSQL refuses root). It takes
# 200 connections (the suite runs many tests at once), or CREDENTIAL_TEST_POSTGRES_MAX_CONNECTIONS.
set -euo pipefail
source "$(dirname "$0")/service-helpers.sh"

install_server() {
  # Install without the default cluster: the tests make their own.
  mkdir -p /etc/postgresql-common
  if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
    printf 'create_main_cluster = false\n' >/etc/postgresql-common/createcluster.conf
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    postgresql postgresql-client openssl >&2
}

server_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start() {
  local bin
  bin="$(server_bin)"
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    install_server
    bin="$(server_bin)"
  fi
  local state run_as owner
  state="$(mktemp -d /tmp/credential-postgres.XXXXXX)"
  chmod 0755 "$state"
  service_user

  # Certificates: a CA that signs the server's, and another CA that signs nothing.
  (
    cd "$state"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -keyout ca.key -out ca.crt -subj "/CN=credential test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -keyout other-ca.key -out other-ca.crt -subj "/CN=credential untrusted CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.crt 2>/dev/null
    rm -f ca.key other-ca.key server.csr server.ext ca.srl
    chmod 0600 server.key
    chmod 0644 ca.crt other-ca.crt server.crt
  )

  local password port
  password="$(openssl rand -hex 16)"
  port="$(free_port)"
  printf '%s\n' "$password" >"$state/password"
  chmod 0600 "$state/password"
  mkdir -m 0700 "$state/data"
  chown "$owner" "$state/data" "$state/password" "$state/server.key" "$state"

  "${run_as[@]}" "$bin/initdb" -D "$state/data" -U credential --pwfile="$state/password" \
    --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1
  rm -f "$state/password"
  cat >>"$state/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$state'
max_connections = ${CREDENTIAL_TEST_POSTGRES_MAX_CONNECTIONS:-200}
ssl = on
ssl_cert_file = '$state/server.crt'
ssl_key_file = '$state/server.key'
EOF
  "${run_as[@]}" "$bin/pg_ctl" -D "$state/data" -l "$state/server.log" -w -t 60 start >&2
  PGPASSWORD="$password" "$bin/createdb" -h 127.0.0.1 -p "$port" -U credential credential

  # Restarts the server in place (same port, same data), for the restart test.
  cat >"$state/restart" <<EOF
#!/usr/bin/env bash
exec ${run_as[*]} "$bin/pg_ctl" -D "$state/data" -l "$state/server.log" -w -t 60 -m fast restart >/dev/null
EOF
  chmod 0755 "$state/restart"

  local url="postgres://credential:$password@localhost:$port/credential?sslmode=verify-full&sslrootcert=$state/ca.crt"
  printf 'export CREDENTIAL_TEST_POSTGRES_URL=%q\n' "$url"
  printf 'export CREDENTIAL_TEST_POSTGRES_STATE=%q\n' "$state"
}

stop() {
  local state="${1:?usage: postgres.sh stop STATE_DIR}"
  # A fast shutdown: roll back open transactions, close connections, stop.
  stop_pid "$state/data/postmaster.pid" INT 300 0.1
  rm -rf "$state"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *)
    echo "usage: postgres.sh start | stop STATE_DIR" >&2
    exit 2
    ;;
esac
