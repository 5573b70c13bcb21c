#!/usr/bin/env bash
# Starts the servers the production-stack tests and benchmarks use, on 127.0.0.1 only,
# installing them from Debian's packages when missing. Prints the URL to use.
#
#   scripts/services.sh postgres   -> postgres://postgres@127.0.0.1:55432/webchat
#   scripts/services.sh redis      -> redis://127.0.0.1:56379/0
#
# FAST=1 starts PostgreSQL without fsync (for test runs; never for benchmarks).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
as_owner() {  # PostgreSQL refuses to run as root
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
apt_install() {
    if [ "$(id -u)" != 0 ]; then echo "install $* (as root: apt-get install $*)" >&2; exit 1; fi
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

case "${1:-}" in
postgres)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    port="${PG_PORT:-55432}"
    data="${PG_DATA:-/tmp/webchat-pg-$port}"
    if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
        if [ ! -f "$data/PG_VERSION" ]; then
            mkdir -p "$data"
            [ "$(id -u)" = 0 ] && chown postgres "$data"
            as_owner "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 >/dev/null
        fi
        opts="-h 127.0.0.1 -p $port -k /tmp -c max_connections=200"
        [ "${FAST:-0}" = 1 ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -o "$opts" -w start >/dev/null
    fi
    if ! psql -h 127.0.0.1 -p "$port" -U postgres -Atc "select 1 from pg_database where datname='webchat'" | grep -q 1; then
        psql -h 127.0.0.1 -p "$port" -U postgres -qc "create database webchat" >/dev/null
    fi
    echo "postgres://postgres@127.0.0.1:$port/webchat"
    ;;
redis)
    command -v redis-server >/dev/null || apt_install redis-server
    port="${REDIS_PORT:-56379}"
    if ! redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
        mkdir -p "$ROOT/var/redis"
        redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$ROOT/var/redis" \
            --save "" --appendonly no --logfile "$ROOT/var/redis/redis.log" >/dev/null
        for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    echo "redis://127.0.0.1:$port/0"
    ;;
*)
    echo "usage: $0 postgres|redis" >&2
    exit 2
    ;;
esac
