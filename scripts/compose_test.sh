#!/usr/bin/env bash
# Run the whole stack in Docker with compose.yml and prove it works (`make test-compose`).
#
#  1. engine    use the running Docker engine; if there is none and we are root with apt,
#               install Debian's docker.io + docker-compose (+ debootstrap) and start dockerd
#               by hand, with an egress guard so that no container traffic leaves this machine
#  2. base      build the base image (debootstrap bookworm + python3, docker import) if missing
#  3. build     docker build the project image from the Dockerfile
#  4. up        compose up with --scale cache=3, wait until every container is healthy
#  5. functional  load_test.py functional against the published lb
#  6. kill cache  stop one cache replica: functional again with zero failures, and the lb's
#               /_lb/stats must show the dead replica skipped
#  7. restart   25 likes on one tweet, compose down (volumes kept) and up again: the likes,
#               the tweets, the accounts and the api's token key must all have survived
#  8. teardown  compose down -v, remove the test image; if this script started the engine,
#               stop it (by PID) and restore the host's network exactly as it was
#
# Environment:
#   FPT_SKIP_COMPOSE=1   where no engine can be had (not root, no apt), skip and exit 0 instead
#                        of failing; ignored under CI (CI=true), where this test always runs
#   FPT_COMPOSE_FILES    compose files to test, space-separated (default: compose.yml
#                        compose.override.yml, what `docker compose up` loads here)
#   FPT_PROJECT          compose project name (default fptcomposetest)
#   FPT_LB_PORT, FPT_WEB_PORT, FPT_MASTODON_PORT  loopback ports to publish lb, web and
#                        mastodon on (default 18000, 18080 and 18500 when free, else any free
#                        port: never `make run`'s 8000-8500)
#   FPT_HEALTH_TIMEOUT   seconds to wait for every service to be healthy (default 120)
#   FPT_KEEP_BASE=0      also remove the base image at the end (default: keep it cached, it
#                        takes ~80 s to rebuild and holds nothing of the project's)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD

# What `docker compose up` reads here by default: compose.yml plus compose.override.yml.
read -r -a COMPOSE_FILES <<<"${FPT_COMPOSE_FILES:-compose.yml compose.override.yml}"
PROJECT=${FPT_PROJECT:-fptcomposetest}
IMAGE=fpt:test
BASE_IMAGE=fpt-base:bookworm
SUITE=bookworm
SCALE=3
LIKES=25
HEALTH_TIMEOUT=${FPT_HEALTH_TIMEOUT:-120}
KEEP_BASE=${FPT_KEEP_BASE:-1}

# -- output: timestamps and per-step timings ------------------------------------------------

now_us() { local t=${EPOCHREALTIME}; echo "${t/./}"; }
secs() { local us=$1; printf '%d.%d' $((us / 1000000)) $(((us / 100000) % 10)); }
START_US=$(now_us)
log() { printf '%s [%6ss] %s\n' "$(date +%H:%M:%S)" "$(secs $(($(now_us) - START_US)))" "$*"; }
indent() { sed -u 's/^/    | /'; }

STEP_NAMES=()
STEP_TIMES=()
STEP_RESULTS=()
STEP=""
STEP_US=0
step() {
    end_step ok
    STEP=$1
    STEP_US=$(now_us)
    log "=== ${STEP}"
}
end_step() {
    if [[ -n $STEP ]]; then
        local took=$(($(now_us) - STEP_US))
        STEP_NAMES+=("$STEP")
        STEP_TIMES+=("$(secs "$took")")
        STEP_RESULTS+=("$1")
        log "--- ${STEP}: $1 in $(secs "$took") s"
        STEP=""
    fi
}
FAILURE=""
SKIPPED=""
die() {
    FAILURE=$*
    log "FAIL: $*"
    exit 1
}

# -- state for the cleanup trap -------------------------------------------------------------

TMP=$(mktemp -d /tmp/fpt-compose-test.XXXXXX)
ENGINE_STARTED=0
ENGINE_OK=0
DOCKERD_PID=""
CONTAINERD_PID=""
POLICY_RC_CREATED=0
ROOTFS=""
STACK_TOUCHED=0
IMAGE_BUILT=0
BASE_BUILT=0
NET_RECORDED=0
COMPOSE=()

COMPOSE_ARGS=(-p "$PROJECT")
for file in "${COMPOSE_FILES[@]}"; do COMPOSE_ARGS+=(-f "$file"); done
compose() { "${COMPOSE[@]}" "${COMPOSE_ARGS[@]}" "$@"; }

show_stack_state() {
    log "stack state (compose ps) and the last log lines of every service:"
    compose ps 2>&1 | indent || true
    for id in $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"); do
        local name
        name=$(docker inspect -f '{{.Name}}' "$id" 2>/dev/null || echo "$id")
        if [[ $(docker inspect -f '{{.State.Running}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id") == "true unhealthy" ]]; then
            echo "health check of ${name#/} (last attempts):"
            docker inspect -f '{{range .State.Health.Log}}exit {{.ExitCode}}: {{.Output}}{{println}}{{end}}' "$id" |
                grep -v '^$' | tail -n 6
        fi 2>/dev/null | indent
    done
    compose logs --no-color --tail=30 2>&1 | indent || true
}

unmount_under() {  # lazily unmount everything mounted below $1 (deepest first)
    local dir=$1
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r |
        while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT
    trap '' INT TERM  # a second Ctrl-C must not leave the host half restored
    if [[ -n $SKIPPED ]]; then
        rm -rf "$TMP"
        log "SKIPPED: $SKIPPED"
        exit 0
    fi
    if [[ $rc -ne 0 ]]; then
        end_step FAILED
        if [[ $STACK_TOUCHED == 1 ]]; then show_stack_state; fi
    else
        end_step ok
    fi
    STEP="teardown"
    STEP_US=$(now_us)
    log "=== teardown"
    if [[ $STACK_TOUCHED == 1 ]]; then
        log "compose down -v (containers, network and volumes of project $PROJECT)"
        timeout 120 "${COMPOSE[@]}" "${COMPOSE_ARGS[@]}" down -v \
            --remove-orphans --timeout 30 2>&1 | indent
        local left
        left=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
        [[ $left -eq 0 ]] || log "WARNING: $left volume(s) of $PROJECT are left"
    fi
    if [[ $IMAGE_BUILT == 1 ]]; then
        log "removing the test image $IMAGE"
        docker rmi -f "$IMAGE" >/dev/null 2>&1 || log "WARNING: could not remove $IMAGE"
    fi
    if [[ $ENGINE_OK == 0 ]]; then
        :
    elif [[ $KEEP_BASE == 0 ]] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "removing the base image $BASE_IMAGE (FPT_KEEP_BASE=0)"
        docker rmi -f "$BASE_IMAGE" >/dev/null 2>&1
    elif [[ $BASE_BUILT == 1 || $KEEP_BASE != 0 ]]; then
        log "keeping the base image $BASE_IMAGE cached for the next run (FPT_KEEP_BASE=0 removes it)"
    fi
    if [[ -n $ROOTFS && -d $ROOTFS ]]; then
        unmount_under "$ROOTFS"
        rm -rf --one-file-system "$ROOTFS"
    fi
    if [[ $ENGINE_STARTED == 1 ]]; then
        stop_engine
    fi
    if [[ $NET_RECORDED == 1 ]] && ! restore_network; then
        rc=1
        FAILURE=${FAILURE:-the host network was not restored exactly (see above)}
    fi
    if [[ $POLICY_RC_CREATED == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    rm -rf "$TMP"
    if [[ $rc -eq 0 ]]; then end_step ok; else end_step "done"; fi

    echo
    log "step timings:"
    local i
    for i in "${!STEP_NAMES[@]}"; do
        printf '    %-44s %8s s  %s\n' "${STEP_NAMES[$i]}" "${STEP_TIMES[$i]}" "${STEP_RESULTS[$i]}"
    done
    printf '    %-44s %8s s\n' "total" "$(secs $(($(now_us) - START_US)))"
    if [[ $rc -eq 0 ]]; then
        log "PASS: the stack runs in Docker with compose (${COMPOSE[*]:-no compose})"
    else
        log "FAILED${FAILURE:+: $FAILURE}"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'FAILURE="interrupted"; exit 130' INT
trap 'FAILURE="terminated"; exit 143' TERM

# -- the engine -----------------------------------------------------------------------------

engine_running() { command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; }

no_engine() {
    local why=$1
    if [[ ${FPT_SKIP_COMPOSE:-} == 1 ]]; then
        if [[ -n ${CI:-} && ${CI:-} != false ]]; then
            log "FPT_SKIP_COMPOSE=1 is ignored under CI (CI=$CI): this test must run here"
        else
            SKIPPED="no Docker engine available ($why); FPT_SKIP_COMPOSE=1 asked to skip this test"
            exit 0
        fi
    fi
    die "no Docker engine available: $why. Run as root on Debian/Ubuntu (this script then" \
        "installs docker.io and starts dockerd itself), start an engine, or set" \
        "FPT_SKIP_COMPOSE=1 to skip this test explicitly"
}

apt_install() {
    log "apt-get install $* (no recommends)"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # Keep the packages' maintainer scripts from starting daemons: this script starts
        # dockerd itself, by hand, so that it can stop it again.
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=1
    fi
    local ok=0
    if [[ ! -e $TMP/apt-updated ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >"$TMP/apt.log" 2>&1 || ok=1
        tail -n 2 "$TMP/apt.log" | indent
        touch "$TMP/apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
        >"$TMP/apt.log" 2>&1 || ok=1
    if [[ $POLICY_RC_CREATED == 1 ]]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
    if [[ $ok != 0 ]]; then
        tail -n 15 "$TMP/apt.log" | indent
        return 1
    fi
    log "installed: $(awk '/^Setting up /{print $3}' "$TMP/apt.log" | tr '\n' ' ')"
}

default_iface() { ip route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}'; }

nft_tables() { nft list tables 2>/dev/null | awk '$1 == "table" {print $2 " " $3}' | sort; }

links() { ip -o link show | awk -F': ' '{split($2, a, "@"); print a[1]}' | sort; }

record_network() {
    iptables-save >"$TMP/iptables.v4"
    if command -v ip6tables-save >/dev/null; then ip6tables-save >"$TMP/iptables.v6"; fi
    cat /proc/sys/net/ipv4/ip_forward >"$TMP/ip_forward"
    if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
        cat /proc/sys/net/bridge/bridge-nf-call-iptables >"$TMP/bridge-nf"
    fi
    links >"$TMP/links"
    awk '{print $2}' /proc/mounts | sort >"$TMP/mounts"
    ls -A /var/run >"$TMP/var-run"
    [[ -e /var/run/docker.sock ]] && touch "$TMP/had-docker-sock"
    [[ -e /var/run/docker ]] && touch "$TMP/had-run-docker"
    [[ -e /var/run/containerd ]] && touch "$TMP/had-run-containerd"
    if command -v nft >/dev/null; then nft_tables >"$TMP/nft-tables"; fi
    NET_RECORDED=1
    log "recorded the host network: ip_forward=$(cat "$TMP/ip_forward"), $(grep -c '^-A' "$TMP/iptables.v4" || true) iptables rules," \
        "docker0 $(grep -qx docker0 "$TMP/links" && echo exists || echo absent), $(iptables --version)"
}

# Turn iptables-save output into a comparable form: no comments, no counters, and tables that
# hold nothing (no rules, no own chains, every policy ACCEPT) left out, as if never loaded.
normalize_rules() {
    python3 -c '
import re, sys
tables, name = {}, None
for line in open(sys.argv[1]):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    if line.startswith("*"):
        name = line[1:]; tables[name] = []
    elif line != "COMMIT":
        tables[name].append(re.sub(r" \[\d+:\d+\]$", "", line))
for name, lines in sorted(tables.items()):
    empty = all(l.startswith(":") and l.endswith(" ACCEPT") for l in lines)
    if not empty:
        print("*" + name); print("\n".join(sorted(lines)))
' "$1"
}

# Write an iptables-restore file that brings every table back to the saved state: the saved
# tables as they were, and any table that exists now but did not then reset to empty.
restore_file() {
    local saved=$1 current=$2
    python3 -c '
import sys
builtin = {"filter": "INPUT FORWARD OUTPUT", "nat": "PREROUTING INPUT OUTPUT POSTROUTING",
           "mangle": "PREROUTING INPUT FORWARD OUTPUT POSTROUTING", "raw": "PREROUTING OUTPUT",
           "security": "INPUT FORWARD OUTPUT"}
saved = open(sys.argv[1]).read()
had = {l[1:].strip() for l in saved.splitlines() if l.startswith("*")}
now = {l[1:].strip() for l in open(sys.argv[2]) if l.startswith("*")}
out = [saved.rstrip("\n")] if saved.strip() else []
for table in sorted(now - had):
    out.append("*" + table)
    out += [":%s ACCEPT [0:0]" % c for c in builtin.get(table, "").split()]
    out.append("COMMIT")
print("\n".join(out))
' "$saved" "$current"
}

restore_network() {
    local ok=0 family save restore file
    log "restoring the host network"
    for family in v4 v6; do
        file=$TMP/iptables.$family
        [[ -e $file ]] || continue
        if [[ $family == v4 ]]; then save=iptables-save; restore=iptables-restore
        else save=ip6tables-save; restore=ip6tables-restore; fi
        $save >"$TMP/now.$family"
        restore_file "$file" "$TMP/now.$family" >"$TMP/restore.$family"
        if ! $restore <"$TMP/restore.$family"; then
            log "WARNING: $restore failed"; ok=1
        fi
        $save >"$TMP/after.$family"
        if diff <(normalize_rules "$file") <(normalize_rules "$TMP/after.$family") >"$TMP/diff.$family"; then
            log "  ip$([[ $family == v6 ]] && echo 6)tables: as before ($(grep -c '^-A' "$TMP/after.$family" || true) rules)"
        else
            log "  WARNING: ip$([[ $family == v6 ]] && echo 6)tables differ from before:"
            indent <"$TMP/diff.$family"
            ok=1
        fi
    done
    # Interfaces dockerd made (docker0, br-*, veth*) that were not there before.
    local link
    for link in $(comm -13 "$TMP/links" <(links)); do
        case $link in
            docker0 | docker_gwbridge | br-* | veth*) ip link delete "$link" 2>/dev/null && log "  deleted interface $link" ;;
            *) log "  WARNING: interface $link appeared and is not docker's; left alone" ;;
        esac
    done
    cat "$TMP/ip_forward" >/proc/sys/net/ipv4/ip_forward
    if [[ -e $TMP/bridge-nf && -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
        cat "$TMP/bridge-nf" >/proc/sys/net/bridge/bridge-nf-call-iptables
    fi
    local mnt
    for mnt in $(comm -13 "$TMP/mounts" <(awk '{print $2}' /proc/mounts | sort) | sort -r); do
        case $mnt in
            /var/lib/docker* | /run/docker* | /var/run/docker* | /run/containerd* | /var/lib/containerd*)
                umount -l "$mnt" 2>/dev/null && log "  unmounted $mnt" ;;
        esac
    done
    if [[ ! -e $TMP/had-docker-sock ]]; then rm -f /var/run/docker.sock /var/run/docker.pid; fi
    if ! pgrep -x dockerd >/dev/null && ! pgrep -x containerd >/dev/null; then
        local dir  # dockerd's exec-root and the shim sockets, when this run made them
        for dir in docker containerd; do
            if [[ ! -e $TMP/had-run-$dir && -d /var/run/$dir ]]; then
                unmount_under "/var/run/$dir"
                rm -rf --one-file-system "/var/run/$dir"
            fi
        done
    fi
    # iptables-nft cannot delete a table: tables that did not exist before are emptied above,
    # and deleted here with nft when it is installed.
    if [[ -e $TMP/nft-tables ]] && command -v nft >/dev/null; then
        local family name
        while read -r family name; do
            nft delete table "$family" "$name" 2>/dev/null &&
                log "  deleted nft table $family $name (emptied above; made by this run)"
        done < <(comm -13 "$TMP/nft-tables" <(nft_tables))
    fi
    local new_run
    new_run=$(comm -13 "$TMP/var-run" <(ls -A /var/run) | tr '\n' ' ')
    [[ -z $new_run ]] || log "  note: new in /var/run since the start: $new_run"
    log "  ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)," \
        "docker0 $(ip link show docker0 >/dev/null 2>&1 && echo 'still exists' || echo absent)"
    if ip link show docker0 >/dev/null 2>&1 && ! grep -qx docker0 "$TMP/links"; then ok=1; fi
    return $ok
}

start_engine() {
    log "starting dockerd by hand (log: $TMP/dockerd.log)"
    # A session of its own, so that Ctrl-C on this script does not reach dockerd before the
    # cleanup has taken the stack down.
    setsid dockerd >"$TMP/dockerd.log" 2>&1 </dev/null &
    DOCKERD_PID=$!
    ENGINE_STARTED=1
    local deadline=$((SECONDS + 60))
    until timeout 10 docker info >/dev/null 2>&1; do
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
            tail -n 30 "$TMP/dockerd.log" | indent
            die "dockerd exited while starting (see its log above)"
        fi
        ((SECONDS < deadline)) || { tail -n 30 "$TMP/dockerd.log" | indent; die "dockerd did not answer within 60 s"; }
        sleep 0.5
    done
    CONTAINERD_PID=$(ps -o pid= --ppid "$DOCKERD_PID" | head -n 1 | tr -d ' ')
    log "dockerd is up: PID $DOCKERD_PID (containerd PID ${CONTAINERD_PID:-none}), server" \
        "$(docker version -f '{{.Server.Version}}'), storage $(docker info -f '{{.Driver}}')"

    # Egress guard: nothing a container sends may leave through the default route.
    local iface
    iface=$(default_iface)
    if [[ -n $iface ]]; then
        iptables -N DOCKER-USER 2>/dev/null || true
        iptables -C FORWARD -j DOCKER-USER 2>/dev/null || iptables -I FORWARD -j DOCKER-USER
        iptables -I DOCKER-USER -o "$iface" -j DROP
        EGRESS_IFACE=$iface
        log "egress guard: iptables -I DOCKER-USER -o $iface -j DROP (containers cannot reach beyond this machine)"
    else
        log "egress guard: no default route, so container traffic cannot leave this machine anyway"
    fi
}

stop_engine() {
    log "stopping dockerd (PID $DOCKERD_PID), which this script started"
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    local deadline=$((SECONDS + 30))
    while kill -0 "$DOCKERD_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
        log "WARNING: dockerd did not stop in 30 s; killing it"
        kill -KILL "$DOCKERD_PID" 2>/dev/null
    fi
    wait "$DOCKERD_PID" 2>/dev/null
    if [[ -n $CONTAINERD_PID ]] && kill -0 "$CONTAINERD_PID" 2>/dev/null; then
        sleep 1
        kill -0 "$CONTAINERD_PID" 2>/dev/null && kill -TERM "$CONTAINERD_PID" 2>/dev/null &&
            log "stopped the containerd that dockerd had started (PID $CONTAINERD_PID)"
    fi
    log "dockerd stopped"
}

step "engine"
if engine_running; then
    log "a Docker engine is running: using it as it is (and leaving it running)"
    log "server $(docker version -f '{{.Server.Version}}'), client $(docker version -f '{{.Client.Version}}')"
else
    [[ $(id -u) -eq 0 ]] || no_engine "none is running, and only root can install and start one"
    command -v apt-get >/dev/null || no_engine "none is running, and there is no apt-get to install one"
    missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v iptables >/dev/null || missing+=(iptables)
    if [[ ${#missing[@]} -gt 0 ]]; then  # one apt run for everything a new engine needs
        # nftables: its `nft` lets the cleanup delete the iptables-nft tables dockerd makes.
        command -v nft >/dev/null || missing+=(nftables)
        docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null ||
            missing+=(docker-compose)
        command -v debootstrap >/dev/null || missing+=(debootstrap)
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        apt_install "${missing[@]}" || no_engine "apt-get could not install ${missing[*]}"
    fi
    command -v dockerd >/dev/null || no_engine "dockerd is still missing after installing docker.io"
    record_network
    start_engine
fi
ENGINE_OK=1

if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
elif [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt_install docker-compose || die "apt-get could not install docker-compose"
    COMPOSE=(docker-compose)
else
    die "no compose: neither 'docker compose' nor 'docker-compose' is installed"
fi
log "compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || "${COMPOSE[@]}" version | head -n 1))"

step "compose files"
compose config -q 2>&1 | indent || die "${COMPOSE[*]} rejects ${COMPOSE_FILES[*]}"
log "${COMPOSE[*]} config: ${COMPOSE_FILES[*]} valid; services: $(compose config --services 2>/dev/null | tr '\n' ' ')"
# compose.yml alone must also deploy as a swarm stack. `docker stack config` (Docker CLI 23+)
# runs the same loader as `docker stack deploy`, without needing a swarm.
if docker stack config --help >/dev/null 2>&1; then
    docker stack config -c "${COMPOSE_FILES[0]}" >/dev/null 2>"$TMP/stack-config" || {
        indent <"$TMP/stack-config"
        die "${COMPOSE_FILES[0]} would not deploy as a swarm stack (docker stack config rejects it)"
    }
    log "docker stack config -c ${COMPOSE_FILES[0]}: valid for docker stack deploy" \
        "(CLI $(docker version -f '{{.Client.Version}}'))"
else
    log "docker stack config is not in this Docker CLI (it came with 23.0): swarm check skipped"
fi

# -- images ---------------------------------------------------------------------------------

# The Debian mirror apt already uses, read from its sources (one-line or deb822 format).
apt_mirror() {
    python3 -c '
import glob, re, sys
suite = sys.argv[1]
def one_line(path):
    for line in open(path):
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            return words[1]
def deb822(path):
    for stanza in open(path).read().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and suite in fields.get("suites", []) \
                and fields.get("enabled", ["yes"])[0] != "no" and fields.get("uris"):
            return fields["uris"][0]
found = None
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        found = found or one_line(path)
    except OSError:
        pass
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    found = found or deb822(path)
if not found:
    sys.exit("no deb source for suite %s in /etc/apt/sources.list(.d)" % suite)
print(found)
' "$SUITE"
}

build_base() {
    if ! command -v debootstrap >/dev/null; then
        if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
            die "the base image $BASE_IMAGE is missing and debootstrap is not installed (needs root and apt)"
        fi
        apt_install debootstrap || die "apt-get could not install debootstrap"
    fi
    local mirror
    mirror=$(apt_mirror) || die "cannot find apt's Debian mirror for $SUITE"
    ROOTFS=$(mktemp -d /var/tmp/fpt-rootfs.XXXXXX)
    log "debootstrap --variant=minbase --include=python3 $SUITE $ROOTFS $mirror"
    local t0
    t0=$(now_us)
    debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOTFS" "$mirror" \
        >"$TMP/debootstrap.log" 2>&1 || { tail -n 30 "$TMP/debootstrap.log" | indent; die "debootstrap failed"; }
    unmount_under "$ROOTFS"
    log "debootstrap done in $(secs $(($(now_us) - t0))) s; trimming apt lists, caches, docs, man pages, locales"
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
        "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
        "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/i18n "$ROOTFS"/var/log/* "$ROOTFS"/tmp/*
    log "rootfs is $(du -sh --one-file-system "$ROOTFS" | cut -f1); docker import as $BASE_IMAGE"
    tar -C "$ROOTFS" -c . | docker import -m "debootstrap $SUITE minbase + python3" \
        -c 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
    BASE_BUILT=1
    rm -rf --one-file-system "$ROOTFS"
    ROOTFS=""
}

step "base image"
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE is cached (created $(docker image inspect -f '{{.Created}}' "$BASE_IMAGE" | cut -c1-19))"
else
    build_base
fi
log "$BASE_IMAGE: $(docker run --rm --network none "$BASE_IMAGE" python3 --version)," \
    "$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"

step "build image"
[[ -f load_test.py ]] || die "load_test.py is missing from $REPO"
log "docker build --build-arg BASE_IMAGE=$BASE_IMAGE -t $IMAGE ."
IMAGE_BUILT=1
if ! DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" . \
    >"$TMP/build.log" 2>&1; then
    tail -n 30 "$TMP/build.log" | indent
    die "docker build failed"
fi
grep -E '^(Step [0-9]+/[0-9]+ : (FROM|COPY|RUN|USER)|Successfully)' "$TMP/build.log" | indent
log "$IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')," \
    "runs as user $(docker image inspect -f '{{.Config.User}}' "$IMAGE")"

# -- the stack ------------------------------------------------------------------------------

free_port() {  # the preferred port if it is free on loopback, else any free one
    python3 -c '
import socket, sys
for port in (int(sys.argv[1]), 0):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no listener
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1]); break
' "$1"
}

step "compose up --scale cache=$SCALE"
LB_PORT=${FPT_LB_PORT:-$(free_port 18000)}
WEB_PORT=${FPT_WEB_PORT:-$(free_port 18080)}
LB_URL=http://127.0.0.1:$LB_PORT
WEB_URL=http://127.0.0.1:$WEB_PORT
MASTODON_PORT=${FPT_MASTODON_PORT:-$(free_port 18500)}
MASTODON_URL=http://127.0.0.1:$MASTODON_PORT
# What the compose file reads from the environment: the test image, loopback-only published
# ports, quick health checks; every tuning knob at its default, whatever this shell has set.
unset CACHE_TTL_S CACHE_MAX_ENTRIES LIKE_BATCHING LIKE_BATCH_SIZE LIKE_MAX_AGE_S LB_STRATEGY \
    LB_RESOLVE_S LOG_REQUESTS API_SECRET_KEY WEB_SECRET_KEY MASTODON_SECRET_KEY
export FPT_IMAGE=$IMAGE LB_PUBLISH=127.0.0.1:$LB_PORT WEB_PUBLISH=127.0.0.1:$WEB_PORT \
    MASTODON_PUBLISH=127.0.0.1:$MASTODON_PORT MASTODON_PUBLIC_URL=$MASTODON_URL \
    WEB_PUBLIC_URL=$WEB_URL HEALTH_INTERVAL=2s
log "project $PROJECT, files ${COMPOSE_FILES[*]}; lb published on $LB_URL, web on $WEB_URL"
STACK_TOUCHED=1
compose down -v --remove-orphans >/dev/null 2>&1 || true  # leftovers of an interrupted run

# Wait until exactly $1 containers of the project run and every one is healthy; fail at once
# when one turns unhealthy or exits, with its health check's own output.
wait_healthy() {
    local want=$1 deadline=$((SECONDS + HEALTH_TIMEOUT)) lines bad
    while :; do
        lines=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" |
            xargs -r docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' 2>/dev/null || true)
        bad=$(awk '$3 != "running" || $4 == "unhealthy" || $4 == "no-healthcheck"' <<<"$lines" | grep -v '^$' || true)
        if [[ -n $bad ]]; then
            echo "$bad" | indent
            die "a service is not healthy: $(awk '{sub("^/", "", $2); printf "%s (%s, %s) ", $2, $3, $4}' <<<"$bad")"
        fi
        if [[ $(grep -c ' healthy$' <<<"$lines") -eq $want && $(grep -c . <<<"$lines") -eq $want ]]; then
            log "all $want containers healthy: $(awk '{print $1}' <<<"$lines" | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            echo "$lines" | indent
            die "the stack was not healthy within ${HEALTH_TIMEOUT} s (FPT_HEALTH_TIMEOUT)"
        fi
        sleep 1
    done
}

stack_up() {
    if ! timeout 300 "${COMPOSE[@]}" "${COMPOSE_ARGS[@]}" up -d --no-build \
        --scale "cache=$SCALE" 2>&1 | indent; then
        local sick
        sick=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" |
            xargs -r docker inspect -f '{{if or (eq .State.Status "exited") (and .State.Health (eq .State.Health.Status "unhealthy"))}}{{index .Config.Labels "com.docker.compose.service"}} {{end}}' 2>/dev/null |
            tr -s ' \n' ' ' || true)
        [[ -n $sick ]] || die "compose up failed (see its output above)"
        die "compose up failed: ${sick% } did not become healthy (health check output below), so what depends on it was not started"
    fi
    wait_healthy $((6 + SCALE))
}
stack_up
if [[ $ENGINE_STARTED == 1 && -n ${EGRESS_IFACE:-} ]]; then
    # The compose network made new rules: the guard must still come first for forwarded traffic.
    if ! iptables -S FORWARD | sed -n 2p | grep -q -- '-j DOCKER-USER' ||
        ! iptables -C DOCKER-USER -o "$EGRESS_IFACE" -j DROP 2>/dev/null; then
        die "the egress guard is no longer in force: $(iptables -S DOCKER-USER | tr '\n' ';')"
    fi
    log "egress guard still in force: FORWARD jumps first to DOCKER-USER, which drops -o $EGRESS_IFACE"
fi

# A small HTTP client for the checks below (standard library only, like the project).
cat >"$TMP/fpt_http.py" <<'PY'
import json, sys, urllib.error, urllib.request

def call(method, url, body=None, token=None, fresh=False):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    if fresh:
        headers["Cache-Control"] = "no-cache"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, err.read()[:300]

def need(status, doc, want, what):
    if status != want:
        sys.exit(f"{what}: expected {want}, got {status}: {doc}")
    return doc

def main():
    cmd, url, *args = sys.argv[1:]
    if cmd == "seed":  # an account, a token and a tweet; prints them as JSON
        user, password = args
        need(*call("POST", url + "/accounts", {"username": user, "password": password,
                                                "display_name": "Compose test"}), 201, "sign up")
        token = need(*call("POST", url + "/sessions", {"username": user, "password": password}),
                     201, "log in")["token"]
        tweet = need(*call("POST", url + "/tweets", {"text": f"survives a restart #{user}"},
                           token), 201, "post")
        print(json.dumps({"token": token, "tweet": tweet}))
    elif cmd == "like":  # N likes, each must answer 202
        tweet_id, n = int(args[0]), int(args[1])
        for i in range(n):
            need(*call("POST", f"{url}/tweets/{tweet_id}/like"), 202, f"like {i + 1}")
    elif cmd == "get":  # one resource, fresh through every cache, as JSON
        print(json.dumps(need(*call("GET", url + args[0], fresh=True), 200, "GET " + args[0])))
    elif cmd == "post":  # POST with a token; prints the status
        status, doc = call("POST", url + args[0], json.loads(args[2]), token=args[1])
        print(status)
    elif cmd == "lb-check":
        # /_lb/stats: the stopped replica must be unhealthy or gone (skipped), the others
        # healthy; with a request count given, the stopped replica must not have served more.
        victim, want_healthy = args[0], int(args[1])
        victim_requests = int(args[2]) if len(args) > 2 and args[2] != "" else None
        status, stats = call("GET", url + "/_lb/stats")
        need(status, stats, 200, "GET /_lb/stats")
        rows = stats["upstreams"]
        for row in rows:
            mark = "  <- stopped replica" if row["address"].rsplit(":", 1)[0] == victim else ""
            print(f"  {row['address']:<22} healthy={row['healthy']!s:<5} "
                  f"requests={row['requests']:<5} failures={row['failures']}{mark}")
        dead = [r for r in rows if r["address"].rsplit(":", 1)[0] == victim]
        healthy = [r for r in rows if r["healthy"] and r not in dead]
        problems = []
        if dead and dead[0]["healthy"]:
            problems.append(f"the stopped replica {victim} is still listed as healthy")
        if dead and victim_requests is not None and dead[0]["requests"] > victim_requests:
            problems.append(f"the stopped replica served {dead[0]['requests'] - victim_requests} "
                            "requests after it was stopped")
        if len(healthy) != want_healthy:
            problems.append(f"{len(healthy)} healthy replicas, expected {want_healthy}")
        state = ("no longer listed (dropped when the lb re-resolved the name)" if not dead else
                 "listed as HEALTHY: not skipped" if dead[0]["healthy"] else
                 "listed as unhealthy (skipped)")
        print(f"  stopped replica {victim}: {state}; "
              f"requests {dead[0]['requests'] if dead else '-'}")
        if problems:
            sys.exit("; ".join(problems))
    elif cmd == "lb-requests":  # a replica's request count ('' when not listed)
        stats = need(*call("GET", url + "/_lb/stats"), 200, "GET /_lb/stats")
        print(next((str(r["requests"]) for r in stats["upstreams"]
                    if r["address"].rsplit(":", 1)[0] == args[0]), ""))

main()
PY
http() { python3 "$TMP/fpt_http.py" "$@"; }

step "functional checks (3 caches)"
log "python3 load_test.py functional --url $LB_URL"
python3 load_test.py functional --url "$LB_URL" 2>&1 | indent ||
    die "load_test.py functional failed against the full stack"
web_status=$(python3 -c 'import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=10).status)' "$WEB_URL/" 2>&1) || true
[[ $web_status == 200 ]] || die "web did not answer GET / with 200 on $WEB_URL: $web_status"
log "web answers GET / with 200 on $WEB_URL"
mastodon_check=$(python3 -c '
import json, sys, urllib.request as u
base = sys.argv[1]
with u.urlopen(base + "/api/v1/instance/", timeout=10) as answer:
    version = json.load(answer)["version"]
with u.urlopen(base + "/api/v1/timelines/public?limit=1", timeout=10) as answer:
    statuses, link = json.load(answer), answer.headers.get("Link", "")
ok = version.startswith("4.2.0") and statuses and link.startswith("<" + base + "/")
print("ok" if ok else f"version {version!r}, {len(statuses)} statuses, Link {link!r}")
' "$MASTODON_URL" 2>&1) || true
[[ $mastodon_check == ok ]] || die "the mastodon gateway on $MASTODON_URL: $mastodon_check"
log "mastodon answers the instance and the public timeline, paging links on $MASTODON_URL"

step "one cache replica stopped"
victim=$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=cache" | head -n 1)
[[ -n $victim ]] || die "no running cache container found"
victim_name=$(docker inspect -f '{{.Name}}' "$victim" | sed 's#^/##')
victim_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$victim" | awk '{print $1}')
log "docker stop $victim_name ($victim_ip)"
docker stop -t 10 "$victim" >/dev/null
deadline=$((SECONDS + 10))
until http lb-check "$LB_URL" "$victim_ip" $((SCALE - 1)) >"$TMP/lb-check" 2>&1; do
    if ((SECONDS >= deadline)); then
        indent <"$TMP/lb-check"
        die "the lb did not skip the stopped cache replica within 10 s (/_lb/stats above)"
    fi
    sleep 0.5
done
log "the lb skips the stopped replica (/_lb/stats):"
indent <"$TMP/lb-check"
victim_requests=$(http lb-requests "$LB_URL" "$victim_ip")
log "python3 load_test.py functional --url $LB_URL (with $((SCALE - 1)) of $SCALE caches)"
python3 load_test.py functional --url "$LB_URL" 2>&1 | indent ||
    die "load_test.py functional failed with one cache replica stopped"
http lb-check "$LB_URL" "$victim_ip" $((SCALE - 1)) "$victim_requests" >"$TMP/lb-check" 2>&1 || {
    indent <"$TMP/lb-check"
    die "after the second functional run, /_lb/stats does not show the stopped replica skipped"
}
log "after the run, /_lb/stats still shows the stopped replica skipped and unused:"
indent <"$TMP/lb-check"

step "likes and data survive a restart"
user=ct_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
seed=$(http seed "$LB_URL" "$user" "compose-test-password") || die "could not make the test account and tweet"
token=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])' <<<"$seed")
tweet_id=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["tweet"]["id"])' <<<"$seed")
jget() { python3 -c 'import json, sys; d = json.load(sys.stdin)
for k in sys.argv[1:]: d = d[k]
print(d if not isinstance(d, (list, dict)) else json.dumps(d))' "$@"; }
likes_before=$(http get "$LB_URL" "/tweets/$tweet_id" | jget likes) || die "cannot read tweet $tweet_id"
log "account $user, tweet $tweet_id with $likes_before likes; sending $LIKES likes"
http like "$LB_URL" "$tweet_id" "$LIKES" || die "a like was not answered 202"
likes_sent=$(http get "$LB_URL" "/tweets/$tweet_id" | jget likes) || die "cannot read tweet $tweet_id"
[[ $likes_sent -eq $((likes_before + LIKES)) ]] ||
    die "tweet $tweet_id shows $likes_sent likes right after $LIKES likes, expected $((likes_before + LIKES))"
stats=$(http get "$LB_URL" /stats) || die "cannot read the api's /stats"
log "tweet $tweet_id shows $likes_sent likes; api /stats: pending $(jget pending <<<"$stats")," \
    "written $(jget likes_written <<<"$stats") of $(jget likes_received <<<"$stats") received"
timeline_before=$(http get "$LB_URL" "/tweets?limit=20" | python3 -c 'import json, sys; print([t["id"] for t in json.load(sys.stdin)["tweets"]])')
accounts_before=$(http get "$LB_URL" "/accounts?limit=100" | python3 -c 'import json, sys; print(sorted(a["username"] for a in json.load(sys.stdin)["accounts"]))')

log "compose stop + down (volumes kept): the api flushes its pending likes on SIGTERM"
t0=$(now_us)
timeout 120 "${COMPOSE[@]}" "${COMPOSE_ARGS[@]}" stop --timeout 30 2>&1 | indent ||
    die "compose stop failed"
# Exit 0 for every one: each stopped on SIGTERM by itself (137 would mean killed at the end
# of its stop_grace_period; the stopped cache replica exited 0 earlier).
exits=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" |
    xargs -r docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}={{.State.ExitCode}}' | sort | tr '\n' ' ')
log "stopped in $(secs $(($(now_us) - t0))) s; exit codes: $exits"
! tr ' ' '\n' <<<"$exits" | grep -v -E '=0$' | grep -q . ||
    die "a service did not stop cleanly on SIGTERM (exit codes: $exits)"
timeout 120 "${COMPOSE[@]}" "${COMPOSE_ARGS[@]}" down 2>&1 | indent || die "compose down failed"
log "down; volumes kept: $(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | tr '\n' ' ')"
t0=$(now_us)
stack_up
log "up again in $(secs $(($(now_us) - t0))) s"

tweet=$(http get "$LB_URL" "/tweets/$tweet_id") || die "tweet $tweet_id is gone after the restart"
likes_after=$(jget likes <<<"$tweet")
stats=$(http get "$LB_URL" /stats) || die "cannot read the api's /stats"
log "after the restart: tweet $tweet_id shows $likes_after likes (expected $likes_before + $LIKES);" \
    "api /stats pending $(jget pending <<<"$stats")"
[[ $likes_after -eq $((likes_before + LIKES)) ]] ||
    die "tweet $tweet_id has $likes_after likes after the restart, expected exactly $((likes_before + LIKES))"
[[ $(jget pending <<<"$stats") -eq 0 ]] ||
    die "the api still has pending likes after a restart: they should all be in the store"
# The api logs "like journal: N tweets pending" when it starts with likes left in its journal:
# its absence shows that the shutdown flush sent them all to the store.
if compose logs --no-color api 2>/dev/null | grep -q 'like journal:'; then
    compose logs --no-color api 2>&1 | grep 'like journal:' | indent
    die "the api did not flush its pending likes at shutdown (they were replayed from its journal)"
fi
log "the api's journal was empty at start: its SIGTERM flush had sent every pending like to the store"
[[ $(jget text <<<"$tweet") == "survives a restart #$user" && $(jget author <<<"$tweet") == "$user" ]] ||
    die "tweet $tweet_id changed across the restart: $tweet"
timeline_after=$(http get "$LB_URL" "/tweets?limit=20" | python3 -c 'import json, sys; print([t["id"] for t in json.load(sys.stdin)["tweets"]])')
[[ $timeline_after == "$timeline_before" ]] ||
    die "the timeline changed across the restart: $timeline_before -> $timeline_after"
accounts_after=$(http get "$LB_URL" "/accounts?limit=100" | python3 -c 'import json, sys; print(sorted(a["username"] for a in json.load(sys.stdin)["accounts"]))')
[[ $accounts_after == "$accounts_before" ]] || die "the accounts changed across the restart"
log "the timeline (20 newest tweets) and the account list are unchanged"
status=$(http post "$LB_URL" /tweets "$token" '{"text": "my token outlived the restart"}')
[[ $status == 201 ]] || die "a token issued before the restart was refused ($status): the api's key did not survive"
log "a token issued before the restart still posts (201): the api's key survived in its volume"
end_step ok
