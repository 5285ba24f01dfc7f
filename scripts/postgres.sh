#!/usr/bin/env bash
# Run a command next to a throwaway PostgreSQL server:
#
#   scripts/postgres.sh COMMAND [ARG...]
#
# When PostgreSQL's binaries are installed (/usr/lib/postgresql/<version>/bin, Debian's
# layout), this starts a cluster in a temporary folder, listening on a free port on 127.0.0.1
# only (and a unix socket in that folder), with a database `fmnist`; exports
# FMNIST_TEST_POSTGRES_URL=postgresql://fmnist@127.0.0.1:PORT/fmnist for COMMAND; and stops the
# server and removes the folder when COMMAND ends, fails or is interrupted. Its exit status is
# COMMAND's. Without the binaries, or when FMNIST_TEST_POSTGRES_URL is already set, it just runs
# COMMAND. The server trades durability for speed (no fsync) and trusts every local connection:
# it is for tests only.
#
# initdb and the server refuse to run as root, so as root they run as the `postgres` user (which
# Debian's package creates) through runuser, in a folder that user owns.
set -euo pipefail

if [ "$#" = 0 ]; then
  echo "usage: scripts/postgres.sh COMMAND [ARG...]" >&2
  exit 2
fi
if [ -n "${FMNIST_TEST_POSTGRES_URL:-}" ]; then
  exec "$@"
fi
initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$initdb" ]; then
  exec "$@"
fi
bin="$(dirname "$initdb")"

as_owner=()
if [ "$(id -u)" = 0 ]; then
  if ! id -u postgres >/dev/null 2>&1; then
    echo "note: no 'postgres' user to run PostgreSQL as; the PostgreSQL tests will not run" >&2
    exec "$@"
  fi
  as_owner=(runuser -u postgres --)
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/fmnist-pg.XXXXXX")"
cleanup() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
if [ "${#as_owner[@]}" -gt 0 ]; then
  chown postgres: "$dir"
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if ! "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U fmnist --auth=trust -E UTF8 --locale=C \
  --no-sync >"$dir/initdb.log" 2>&1; then
  echo "note: initdb failed; the PostgreSQL tests will not run:" >&2
  tail -n 5 "$dir/initdb.log" >&2
  "$@"
  exit
fi

# A port found free may be taken before the server binds it: try a few.
started=""
for _ in 1 2 3; do
  port="$(free_port)"
  if "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -s \
    -o "-F -p $port -c listen_addresses=127.0.0.1 -k $dir -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [ -z "$started" ] ||
  ! "${as_owner[@]}" "$bin/createdb" -h "$dir" -p "$port" -U fmnist fmnist >/dev/null 2>&1; then
  echo "note: the throwaway PostgreSQL server did not start; the PostgreSQL tests will not run:" >&2
  tail -n 5 "$dir/server.log" >&2 2>/dev/null || true
  "$@"
  exit
fi

export FMNIST_TEST_POSTGRES_URL="postgresql://fmnist@127.0.0.1:$port/fmnist"
"$@"
