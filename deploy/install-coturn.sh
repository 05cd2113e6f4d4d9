#!/usr/bin/env bash
# install-coturn.sh -- install and start a coturn relay on a Debian/Ubuntu host.
#
# Rendered by `callops deploy render --target systemd`; turnserver.conf sits next to this script.
# Idempotent: a second run with the same inputs changes nothing. The shared secret is never
# printed: it is read from a file, written into files only coturn can read, and kept off every
# command line (coturn cannot read it from a file, so it is appended to the installed config).
#
# TLS certificates: this script never creates production certificates. Put the certificate chain
# and key where callops.yaml says (tls_cert_file/tls_key_file, shown by --help); after renewing them
# run `install-coturn.sh --reload-certificates` (coturn reloads them on SIGUSR2, no restart).
set -euo pipefail
umask 077

# @@RENDERED-VALUES@@

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF_TEMPLATE="$HERE/turnserver.conf"

DRY_RUN=0
USE_SYSTEMD=1
ROOT=""
SECRET_FROM=""
PROBE_SECRET_FILE=""
RUN_PROBE=1
NFTABLES=$NFTABLES_DEFAULT
RELOAD_CERTS=0
CALLOPS=${CALLOPS:-callops}
START_TIMEOUT=${START_TIMEOUT:-20}

usage() {
    cat <<EOF
usage: install-coturn.sh [options]    (coturn relay for realm $REALM)

Installs coturn, writes $CONF_PATH and the shared-secret file $SECRET_PATH (0600, owned by
$TURN_USER), a systemd drop-in (LimitNOFILE, CAP_NET_BIND_SERVICE, restart on failure), enables
and starts the service, then checks it with 'callops probe'.

  --dry-run               print what would change; change nothing
  --no-systemd            run turnserver in the background directly (containers, CI: where
                          systemd is not PID 1)
  --root DIR              install under DIR instead of / (with --no-systemd; for tests and images)
  --secret-from FILE      take the shared secret from FILE (default: keep the installed one, or
                          generate a random one on the first run)
  --probe-secret-file F   probe with the secret in F (default: the installed secret)
  --no-probe              skip the final 'callops probe'
  --nftables              also install and apply nftables rules for ports $LISTENING_PORT, $TLS_LISTENING_PORT and $MIN_PORT-$MAX_PORT
  --reload-certificates   make the running coturn reload its TLS certificate and key (SIGUSR2)
  -h, --help              this text

TLS certificate: ${TLS_CERT_FILE:-none configured}; key: ${TLS_KEY_FILE:-none configured}.
EOF
}

say() { printf 'install-coturn: %s\n' "$*"; }
die() {
    printf 'install-coturn: error: %s\n' "$*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --no-systemd) USE_SYSTEMD=0 ;;
    --root)
        [ $# -ge 2 ] || die "--root needs a directory"
        ROOT=${2%/}
        shift
        ;;
    --secret-from)
        [ $# -ge 2 ] || die "--secret-from needs a file"
        SECRET_FROM=$2
        shift
        ;;
    --probe-secret-file)
        [ $# -ge 2 ] || die "--probe-secret-file needs a file"
        PROBE_SECRET_FILE=$2
        shift
        ;;
    --no-probe) RUN_PROBE=0 ;;
    --nftables) NFTABLES=1 ;;
    --reload-certificates) RELOAD_CERTS=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

CONF="$ROOT$CONF_PATH"
SECRET="$ROOT$SECRET_PATH"
DROPIN="$ROOT/etc/systemd/system/coturn.service.d/callops.conf"
DEFAULTS="$ROOT/etc/default/coturn"
NFT_FILE="$ROOT/etc/nftables.d/callops-coturn.nft"
RUN_DIR="$ROOT/run/callops-coturn"
PID_FILE="$RUN_DIR/turnserver.pid"
LOG_FILE="$ROOT/var/log/callops-coturn/turnserver.log"
CHANGED=0
CONF_CHANGED=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

systemd_is_pid1() { [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; }

if [ "$USE_SYSTEMD" = 1 ]; then
    [ -z "$ROOT" ] || die "--root works only with --no-systemd (systemd manages the real /)"
    systemd_is_pid1 || die "systemd is not PID 1 here (a container or CI?): rerun with --no-systemd to run turnserver directly"
fi
if [ "$DRY_RUN" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
    die "run as root (or with --root DIR --no-systemd to install under DIR)"
fi
[ -r "$CONF_TEMPLATE" ] || die "$CONF_TEMPLATE is missing: keep turnserver.conf next to this script"

owner_args() {
    # The turnserver user owns coturn's files when it exists and we may chown.
    if [ "$(id -u)" = 0 ] && id "$TURN_USER" >/dev/null 2>&1; then
        printf '%s\n' "-o" "$1" "-g" "$TURN_USER"
    fi
}

# install_file SRC DEST MODE OWNER: copy SRC to DEST unless identical; never prints contents.
install_file() {
    local src=$1 dest=$2 mode=$3 owner=$4
    if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
        say "unchanged: $dest"
        return 1
    fi
    if [ "$DRY_RUN" = 1 ]; then
        say "would write: $dest (mode $mode)"
        return 0
    fi
    (umask 022 && mkdir -p "$(dirname "$dest")")
    local -a own
    mapfile -t own < <(owner_args "$owner")
    install -m "$mode" "${own[@]}" "$src" "$dest"
    say "wrote: $dest (mode $mode)"
    return 0
}

# 1. The coturn package.
if [ "$(dpkg-query -W -f='${Status}' coturn 2>/dev/null || true)" = "install ok installed" ]; then
    say "coturn is installed ($(turnserver --version 2>/dev/null | head -n 1 || echo '?'))"
elif [ "$DRY_RUN" = 1 ]; then
    say "would run: apt-get install -y coturn"
else
    [ "$(id -u)" = 0 ] || die "coturn is not installed and installing it needs root"
    say "installing coturn"
    DEBIAN_FRONTEND=noninteractive apt-get install -y coturn >/dev/null || die "apt-get install coturn failed"
    CHANGED=1
fi
command -v turnserver >/dev/null || die "turnserver is not on PATH after installing coturn"

# 2. TLS files (never generated here).
if [ -n "$TLS_CERT_FILE" ]; then
    for f in "$TLS_CERT_FILE" "$TLS_KEY_FILE"; do
        [ -r "$ROOT$f" ] || die "TLS file $ROOT$f does not exist: copy your certificate chain and key there (e.g. from certbot), then run again"
    done
fi

if [ "$RELOAD_CERTS" = 1 ]; then
    if [ "$DRY_RUN" = 1 ]; then
        say "would ask coturn to reload its TLS certificate and key (SIGUSR2)"
        exit 0
    elif [ "$USE_SYSTEMD" = 1 ]; then
        systemctl reload coturn || die "systemctl reload coturn failed"
    else
        [ -f "$PID_FILE" ] || die "no turnserver started by this script is running ($PID_FILE missing)"
        kill -USR2 "$(cat "$PID_FILE")" || die "cannot signal turnserver"
    fi
    say "asked coturn to reload its TLS certificate and key (SIGUSR2)"
    exit 0
fi

# 3. The shared secret: 0600, owned by the turnserver user, never echoed.
read_secret() {
    local file=$1 value
    [ -r "$file" ] || die "the shared-secret file $file does not exist or is not readable"
    value=$(tr -d '\r\n' <"$file")
    [ -n "$value" ] || die "the shared-secret file $file is empty: write the secret into it (openssl rand -hex 32)"
    [ "${#value}" -ge 16 ] || die "the shared secret in $file is shorter than 16 characters: use a long random one (openssl rand -hex 32)"
    case "$value" in *[[:space:]]*) die "the shared secret in $file contains whitespace" ;; esac
    printf '%s' "$value"
}
NEW_SECRET="$WORK/secret"
if [ -n "$SECRET_FROM" ]; then
    read_secret "$SECRET_FROM" >"$NEW_SECRET"
elif [ -f "$SECRET" ]; then
    read_secret "$SECRET" >"$NEW_SECRET"
else
    if [ "$DRY_RUN" = 1 ]; then say "no shared secret yet: would generate one in $SECRET"; else say "no shared secret yet: generating one in $SECRET"; fi
    head -c 32 /dev/urandom | od -An -vtx1 | tr -d ' \n' >"$NEW_SECRET"
fi
printf '\n' >>"$NEW_SECRET"
if install_file "$NEW_SECRET" "$SECRET" 0600 "$TURN_USER"; then CHANGED=1; fi

# 4. turnserver.conf with the secret appended (0640 root:turnserver, or 0600).
NEW_CONF="$WORK/turnserver.conf"
{
    cat "$CONF_TEMPLATE"
    printf 'static-auth-secret=%s\n' "$(tr -d '\n' <"$NEW_SECRET")"
} >"$NEW_CONF"
CONF_MODE=0600
if [ "$(id -u)" = 0 ] && id "$TURN_USER" >/dev/null 2>&1; then CONF_MODE=0640; fi
if install_file "$NEW_CONF" "$CONF" "$CONF_MODE" root; then
    CHANGED=1
    CONF_CHANGED=1
fi

# 5. systemd drop-in and /etc/default/coturn (also written with --no-systemd: harmless, and ready).
cat >"$WORK/dropin" <<EOF
# Written by install-coturn.sh (callops).
[Service]
LimitNOFILE=$NOFILE_LIMIT
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
Restart=on-failure
RestartSec=2s
ExecReload=/bin/kill -USR2 \$MAINPID
EOF
DROPIN_CHANGED=0
if install_file "$WORK/dropin" "$DROPIN" 0644 root; then
    CHANGED=1
    DROPIN_CHANGED=1
fi
printf 'TURNSERVER_ENABLED=1\n' >"$WORK/defaults"
if install_file "$WORK/defaults" "$DEFAULTS" 0644 root; then CHANGED=1; fi

# 6. Optional nftables rules (accept the listeners and the relay range in inet filter input).
if [ "$NFTABLES" = 1 ]; then
    cat >"$WORK/nft" <<EOF
# Written by install-coturn.sh (callops): include from /etc/nftables.conf after 'table inet filter'.
table inet filter {
    chain input {
        udp dport { $LISTENING_PORT, $TLS_LISTENING_PORT } accept comment "callops coturn listeners"
        tcp dport { $LISTENING_PORT, $TLS_LISTENING_PORT } accept comment "callops coturn listeners"
        udp dport $MIN_PORT-$MAX_PORT accept comment "callops coturn relay ports"
    }
}
EOF
    if install_file "$WORK/nft" "$NFT_FILE" 0644 root; then CHANGED=1; fi
    if [ "$DRY_RUN" = 0 ]; then
        # (not `nft ... | grep -q`: with pipefail, grep's early exit fails nft with SIGPIPE)
        loaded=$(nft list chain inet filter input 2>/dev/null || true)
        if [[ "$loaded" == *"callops coturn"* ]]; then
            say "nftables rules already loaded"
        else
            nft -f "$NFT_FILE" || die "nft -f $NFT_FILE failed"
            say "loaded nftables rules from $NFT_FILE"
            CHANGED=1
        fi
    fi
fi

# 7. Run the service.
port_users() {
    ss -Hlnup "sport = :$LISTENING_PORT" 2>/dev/null
    ss -Hlntp "sport = :$LISTENING_PORT" 2>/dev/null
}
our_pid() {
    local pid
    [ -f "$PID_FILE" ] || return 1
    pid=$(cat "$PID_FILE")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q turnserver "/proc/$pid/cmdline" 2>/dev/null || return 1
    printf '%s' "$pid"
}
wait_listening() {
    local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
    while [ "$SECONDS" -le "$deadline" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 15 "$LOG_FILE" >&2 2>/dev/null || true
            rm -f "$PID_FILE"
            die "turnserver exited at start-up; the end of its log ($LOG_FILE) is above"
        fi
        if [ -n "$(ss -Hlnu "sport = :$LISTENING_PORT" 2>/dev/null || true)" ]; then return 0; fi
        sleep 0.2
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
    die "turnserver did not listen on udp port $LISTENING_PORT within ${START_TIMEOUT}s (listening address not on this host? log: $LOG_FILE)"
}

if [ "$DRY_RUN" = 1 ]; then
    if [ "$CHANGED" = 1 ]; then say "would (re)start coturn"; else say "nothing to change"; fi
    exit 0
fi

if [ "$USE_SYSTEMD" = 1 ]; then
    [ "$DROPIN_CHANGED" = 0 ] || systemctl daemon-reload
    if [ "$(systemctl is-enabled coturn 2>/dev/null)" != enabled ]; then
        systemctl enable coturn >/dev/null 2>&1 || die "systemctl enable coturn failed"
        say "enabled coturn"
    fi
    if [ "$CONF_CHANGED" = 1 ] || [ "$DROPIN_CHANGED" = 1 ] || ! systemctl is-active --quiet coturn; then
        if ! systemctl is-active --quiet coturn && [ -n "$(port_users)" ]; then
            die "port $LISTENING_PORT is already in use: $(port_users | head -n 1) -- stop that process or change turn.listening_port"
        fi
        systemctl restart coturn || die "coturn failed to start: see journalctl -u coturn"
        say "started coturn"
    else
        say "coturn is running, unchanged"
    fi
else
    pid=$(our_pid || true)
    if [ -n "$pid" ] && [ "$CONF_CHANGED" = 0 ]; then
        say "turnserver is running (pid $pid), unchanged"
    else
        if [ -n "$pid" ]; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -0 "$pid" 2>/dev/null && die "turnserver (pid $pid) did not stop"
            say "stopped turnserver (pid $pid) to apply the new config"
        fi
        if [ -n "$(port_users)" ]; then
            die "port $LISTENING_PORT is already in use: $(port_users | head -n 1 | tr -s ' ') -- stop that process or change turn.listening_port"
        fi
        (umask 022 && mkdir -p "$RUN_DIR" "$(dirname "$LOG_FILE")")
        : >"$LOG_FILE"
        setsid turnserver -c "$CONF" --pidfile "$RUN_DIR/coturn-own.pid" --log-file "$LOG_FILE" \
            --simple-log --no-stdout-log </dev/null >/dev/null 2>&1 &
        pid=$!
        printf '%s\n' "$pid" >"$PID_FILE"
        wait_listening "$pid"
        say "started turnserver in the background (pid $pid, log $LOG_FILE)"
    fi
fi

# 8. Prove it: a real allocation and relay through the new server.
if [ "$RUN_PROBE" = 1 ]; then
    probe_secret=$(realpath "${PROBE_SECRET_FILE:-$SECRET}")
    read -r -a callops_cmd <<<"$CALLOPS"
    if ! "${callops_cmd[@]}" probe --help >/dev/null 2>&1; then
        die "'$CALLOPS probe' is not available: install callops, set CALLOPS, or pass --no-probe"
    fi
    say "probing turn:$PROBE_HOST:$LISTENING_PORT (allocation and relayed data)"
    # From an empty directory, without CALLOPS_CONFIG: only the flags given here count.
    set +e
    (cd "$WORK" && env -u CALLOPS_CONFIG "${callops_cmd[@]}" probe \
        --turn "turn:$PROBE_HOST:$LISTENING_PORT?transport=udp" \
        --secret-file "$probe_secret" --timeout "$PROBE_TIMEOUT" --json) >"$WORK/probe.json"
    rc=$?
    set -e
    # The verdict may be p2p-likely even when the relay fails: judge the relay checks themselves.
    set +e
    why=$(python3 - "$WORK/probe.json" <<'PY'
import json, sys
try:
    report = json.load(open(sys.argv[1]))
except ValueError:
    print("callops probe printed no report")
    sys.exit(1)
relay = [c for c in report.get("checks", []) if c["name"].startswith(("relay", "turn"))]
for c in report.get("checks", []):
    print(f"  {c['status']:<12} {c['name']}: {c.get('error') or c.get('detail') or ''}", file=sys.stderr)
failed = [c for c in relay if c["status"] != "ok"]
if failed or not relay or not report.get("relay_transports"):
    print(failed[0].get("error") or failed[0].get("detail") if failed else "no relay check passed")
    sys.exit(1)
PY
)
    ok=$?
    set -e
    if [ "$ok" != 0 ]; then
        case "$why" in
        *401*) why="$why -- the secret in $probe_secret does not match the server's" ;;
        esac
        die "PROBE FAILED (callops probe exit $rc): $why"
    fi
    say "probe passed: the relay works"
fi
if [ "$CHANGED" = 0 ]; then say "nothing changed"; fi
