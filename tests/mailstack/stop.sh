#!/usr/bin/env bash
# Stop a mail stack started by tests/mailstack/start.sh and remove its state directory.
#
# Usage: tests/mailstack/stop.sh [DIR]    (DIR defaults to $POSTDESK_MAILSTACK_DIR)
#   KEEP=1  keep the state directory (logs, maildirs) after stopping.
# Only the processes of this stack are signalled: each master by the PID in its pid file,
# then whatever is left in that master's session. Idempotent: an already stopped stack or a
# missing directory is not an error.
set -euo pipefail
export PATH="/usr/sbin:/sbin:$PATH"

DIR=${1:-${POSTDESK_MAILSTACK_DIR:-}}
if [ -z "$DIR" ]; then
    echo "usage: $0 DIR (or set POSTDESK_MAILSTACK_DIR)" >&2
    exit 2
fi
log() { printf 'mailstack: %s\n' "$*" >&2; }

if [ ! -d "$DIR" ]; then
    log "$DIR does not exist: nothing to stop"
    exit 0
fi
if [ ! -e "$DIR/.pdms" ]; then
    log "$DIR is not a mail stack directory (no .pdms marker); refusing to touch it"
    exit 2
fi

# pid of a live process named $2 read from pid file $1, or nothing
live_pid() {
    local pid
    [ -r "$1" ] || return 0
    pid=$(tr -dc '0-9' <"$1" | head -c 10)
    [ -n "$pid" ] || return 0
    if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]; then
        echo "$pid"
    fi
}

# live (non-zombie) processes of the session led by master $1, the master included: both
# masters call setsid(), so this is exactly the process tree that stack started
alive() {
    ps -e -o pid=,sid=,stat= | awk -v s="$1" '$2 == s && $3 !~ /^Z/ { printf "%s ", $1 }'
}

# wait until the masters given and their sessions are gone; SIGKILL what is left after 10 s
reap() {
    local waited=0 left m
    while :; do
        left=
        for m in "$@"; do left="$left $(alive "$m")"; done
        [ -n "${left// /}" ] || return 0
        if [ "$waited" -ge 200 ]; then
            log "killing leftover processes:$left"
            # shellcheck disable=SC2086 # word splitting of the pid list is intended
            kill -KILL $left 2>/dev/null || true
            sleep 0.1
            return 0
        fi
        sleep 0.05
        waited=$((waited + 1))
    done
}

PF_PID=$(live_pid "$DIR/pfq/pid/master.pid" master)
DV_PID=$(live_pid "$DIR/dv/master.pid" dovecot)

if [ -n "$PF_PID" ]; then
    if ! postfix -c "$DIR/pf" stop >>"$DIR/postfix.out" 2>&1; then
        kill -TERM "$PF_PID" 2>/dev/null || true
    fi
fi
if [ -n "$DV_PID" ]; then
    kill -TERM "$DV_PID" 2>/dev/null || true
fi
# shellcheck disable=SC2086 # an empty pid must vanish
reap $PF_PID $DV_PID

# The masters were orphaned at start (they daemonize), so their zombies wait for PID 1 to
# reap them; some container inits take ~2 s. Wait (bounded) so that pgrep shows nothing.
waited=0
SIDS=${PF_PID}${PF_PID:+${DV_PID:+,}}${DV_PID}
while [ -n "$SIDS" ] && [ "$waited" -lt 100 ] && pgrep -s "$SIDS" >/dev/null; do
    sleep 0.05
    waited=$((waited + 1))
done

if [ "${KEEP:-0}" = 1 ]; then
    log "stopped; state kept in $DIR"
else
    rm -rf -- "$DIR"
fi
