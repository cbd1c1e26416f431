# Sourced by the servers' start.sh scripts: how a private daemon is seen to be up.

# greet PORT: the first line 127.0.0.1:PORT sends (its SMTP/LMTP greeting),
# after which the connection is closed with QUIT; nothing when nobody listens.
greet() {
    local port="$1" line=""
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
        IFS= read -r -t 3 line <&3 || true
        printf 'QUIT\r\n' >&3 2>/dev/null || true
        exec 3<&- 3>&-
    fi
    printf '%s' "$line"
}
