# Sourced by the servers' stop.sh scripts: how a private daemon is stopped.

# term_then_kill PID: SIGTERM, up to 5 s for the process to go, then SIGKILL.
term_then_kill() {
    local pid="$1"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    return 0
}

# pid_in FILE: the PID written in FILE, or nothing.
pid_in() {
    [ -s "$1" ] && tr -d ' \n' < "$1"
}
