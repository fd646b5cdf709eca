# Helpers for the scripts that start the test services (`source`d by postgres.sh, pgbouncer.sh
# and openbao.sh).

# A free TCP port on the loopback interface.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sets `owner` (who owns a service's files) and `run_as` (the command prefix that runs it): the
# `postgres` user when started by root (PostgreSQL and PgBouncer refuse root), else the caller.
service_user() {
  if [ "$(id -u)" = 0 ]; then
    run_as=(runuser -u postgres --)
    owner=postgres
  else
    run_as=()
    owner="$(id -un)"
  fi
}

# Sends the process whose pid is the first line of `pidfile` (if it exists) `signal`, and waits
# up to `tries` × `pause` seconds for it to end.
stop_pid() {
  local pidfile="$1" signal="$2" tries="$3" pause="$4" pid
  [ -f "$pidfile" ] || return 0
  pid="$(head -n 1 "$pidfile")"
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$tries"); do
    kill -0 "$pid" 2>/dev/null || break
    sleep "$pause"
  done
}
