#!/usr/bin/env bash
# Linux bridge mirror testbed: a kernel bridge with VMs in network namespaces and a tc mirred
# mirror of every VM port to a veth whose peer mirrorflow captures. Needs root, iproute2 (ip,
# tc, bridge, ss), ethtool, iputils-ping and iperf3. No daemons: runs may overlap.
#
#   bridge-testbed.sh up DIR        build everything; state and results live in DIR
#   bridge-testbed.sh env DIR       print the names and addresses (DIR/env, KEY=VALUE lines)
#   bridge-testbed.sh traffic DIR   generate known traffic between the VMs; results in DIR/traffic/
#   bridge-testbed.sh down DIR      tear down (idempotent; also removes leftovers of crashed runs)
#
# What `up` builds (ID is a fresh 4-hex-digit id, P = mfb$ID), all in the root namespace
# except the VMs:
#   bridge ${P}br (STP off, no addresses, IPv6 off: it sends nothing itself),
#   vm1..vm4 = namespaces ${P}-vmN, each with eth0 (MAC 52:54:00:78:00:0N, 10.78.0.N/24,
#     fd78::N/64) whose veth peer ${P}vN is a bridge port. Untagged only: a VLAN pair needs
#     802.1Q (CONFIG_VLAN_8021Q) or bridge VLAN filtering, which not every kernel has.
#   the mirror: veth ${P}mo (not a bridge port) whose peer ${P}mc has no addresses (IPv6 off):
#     capture there. Every ${P}vN gets a clsact qdisc and, on its ingress (= frames the VM
#     sent), `matchall action mirred egress mirror dev ${P}mo`; kernels without cls_matchall
#     get the equivalent `u32 match u32 0 0`. Only ingress is mirrored, so each frame crossing
#     the bridge is copied once (at the port it came in on), never again where it leaves.
# Runs are registered in /run/mfb-testbed/ID (owner pid, DIR) before anything is created;
# `down` removes the names of any run whose owner is gone.
set -euo pipefail

PREFIX=mfb
MARKER=mfb-testbed
REGISTRY=/run/mfb-testbed
NVMS=4

die() { echo "bridge-testbed: $*" >&2; exit 1; }
need() { for t in "$@"; do command -v "$t" >/dev/null || die "$t is missing (apt-get install iproute2 ethtool iputils-ping iperf3)"; done; }

# poll TRIES CMD...: run CMD every 50 ms until it succeeds, at most TRIES times.
poll() {
  local tries=$1; shift
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  return 1
}

# stop_pid PID COMM: TERM, poll, KILL; only if the process is still COMM (a stale pidfile may
# name a reused pid).
stop_pid() {
  local pid=$1 comm=$2
  [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  poll 100 bash -c "! kill -0 $pid" || { kill -KILL "$pid" 2>/dev/null || true; poll 100 bash -c "! kill -0 $pid" || true; }
}

# remove_run ID: every namespace and link of that run.
remove_run() {
  local id=$1 ns link
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX$id-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^$PREFIX$id" || true); do
    ip link del "$link" 2>/dev/null || true
  done
  rm -f "$REGISTRY/$id"
}

# Removes the runs of this prefix whose owner is gone (or that were never registered).
clean_stale() {
  local id owner
  for id in $({
    ip netns list 2>/dev/null | awk '{print $1}'
    ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'
    ls "$REGISTRY" 2>/dev/null | sed "s/^/$PREFIX/"
  } | sed -n "s/^$PREFIX\([0-9a-f]\{4\}\).*/\1/p" | sort -u); do
    owner=$(sed -n 's/^OWNER_PID=//p' "$REGISTRY/$id" 2>/dev/null)
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi
    remove_run "$id"
  done
}

cmd_down() {
  local dir=$1 pidf id
  if [ -f "$dir/$MARKER" ]; then
    for pidf in "$dir"/traffic/*.pid; do
      [ -f "$pidf" ] && stop_pid "$(cat "$pidf")" iperf3
    done
    id=$(cat "$dir/id" 2>/dev/null || true)
    [ -z "$id" ] || remove_run "$id"
  fi
  clean_stale
  if [ -f "$dir/$MARKER" ]; then
    find "$dir" -mindepth 1 -delete 2>/dev/null || true
  fi
}

# mirror_port PORT MIRROR: copy every frame arriving on PORT (sent by its VM) to MIRROR.
mirror_port() {
  local port=$1 mirror=$2
  tc qdisc add dev "$port" clsact
  tc filter add dev "$port" ingress matchall action mirred egress mirror dev "$mirror" 2>/dev/null ||
    tc filter add dev "$port" ingress protocol all u32 match u32 0 0 \
      action mirred egress mirror dev "$mirror" ||
    die "tc cannot mirror $port (neither cls_matchall nor cls_u32)"
}

cmd_up() {
  local dir=$1
  need ip tc bridge ss ethtool ping iperf3
  [ "$(id -u)" = 0 ] || die "must run as root (namespaces, veths, bridge, tc)"
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  dir=$(cd "$dir" && pwd)
  clean_stale
  mkdir -p "$REGISTRY"
  local id p
  # A fresh id: none of its names exists and nobody else registered it.
  for _ in 1 2 3 4 5 6 7 8; do
    id=$(od -An -N2 -tx2 /dev/urandom | tr -d ' \n')
    (set -o noclobber; echo "OWNER_PID=$PPID" >"$REGISTRY/$id") 2>/dev/null && break
    id=""
  done
  [ -n "$id" ] || die "no free testbed id in $REGISTRY"
  echo "DIR=$dir" >>"$REGISTRY/$id"
  p=$PREFIX$id
  touch "$dir/$MARKER"
  echo "$id" >"$dir/id"
  # From here on a failure tears down what was built.
  UP_DIR=$dir
  trap 'echo "bridge-testbed: up failed; tearing down" >&2; cmd_down "$UP_DIR"' EXIT

  local br=${p}br mo=${p}mo mc=${p}mc
  ip link add "$br" type bridge stp_state 0
  sysctl -qw "net.ipv6.conf.$br.disable_ipv6=1"
  ip link set "$br" up
  ip link add "$mo" type veth peer name "$mc"
  for host in "$mo" "$mc"; do
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
    ethtool -K "$host" tx off tso off gso off gro off >/dev/null
    ip link set "$host" mtu 9000 up
  done
  {
    echo "TESTBED_ID=$id"
    echo "DIR=$dir"
    echo "BRIDGE=$br"
    echo "OWNER_PID=$PPID"
  } >"$dir/env.tmp"

  local i ns host mac ip4 ip6 vms=""
  for ((i = 1; i <= NVMS; i++)); do
    ns=$p-vm$i
    host=${p}v$i
    mac=52:54:00:78:00:0$i
    ip4=10.78.0.$i ip6=fd78::$i
    ip netns add "$ns"
    ip link add "$host" type veth peer name "${p}p$i"
    ip link set "${p}p$i" netns "$ns"
    ip -n "$ns" link set "${p}p$i" name eth0
    ip -n "$ns" link set eth0 address "$mac"
    ip netns exec "$ns" ethtool -K eth0 tx off tso off gso off gro off >/dev/null
    ethtool -K "$host" tx off tso off gso off gro off >/dev/null
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.router_solicitations=0 \
      net.ipv6.conf.eth0.accept_dad=0
    ip -n "$ns" addr add "$ip4/24" dev eth0
    ip -n "$ns" addr add "$ip6/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
    ip link set "$host" master "$br"
    mirror_port "$host" "$mo"
    ip link set "$host" up
    vms="$vms${vms:+,}vm$i"
    {
      echo "VM${i}_NS=$ns"
      echo "VM${i}_PORT=$host"
      echo "VM${i}_MAC=$mac"
      echo "VM${i}_IP4=$ip4"
      echo "VM${i}_IP6=$ip6"
      echo "VM${i}_IFINDEX=$(cat /sys/class/net/"$host"/ifindex)"
    } >>"$dir/env.tmp"
  done

  # Ready when every port forwards (STP is off: as soon as its link is up).
  for ((i = 1; i <= NVMS; i++)); do
    poll 200 bash -c "bridge link show dev ${p}v$i | grep -q 'state forwarding'" ||
      die "port ${p}v$i does not forward: $(bridge link show dev "${p}v$i")"
  done
  {
    echo "VMS=$vms"
    echo "MIRROR_PORT=$mo"
    echo "CAPTURE_IF=$mc"
    echo "CAPTURE_IFINDEX=$(cat /sys/class/net/"$mc"/ifindex)"
  } >>"$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
  trap - EXIT
  cat "$dir/env"
}

load_env() {
  local dir=$1
  [ -f "$dir/env" ] || die "$dir/env is missing: run \`$0 up $dir\` first"
  # shellcheck disable=SC1091
  . "$dir/env"
}

# vmvar N FIELD: value of VM<N>_<FIELD> from the env file.
vmvar() { local v="VM$1_$2"; echo "${!v}"; }

inns() { local n=$1; shift; ip netns exec "$(vmvar "$n" NS)" "$@"; }

# Frames the mirror veth has sent (= frames tc mirrored), into FILE.
mirror_tx() { cat "/sys/class/net/$MIRROR_PORT/statistics/tx_packets" >"$1"; }

# iperf NAME CLIENT SERVER ADDR IPERF-CLIENT-ARGS...: one iperf3 test; the client's JSON
# report in NAME.json.
iperf() {
  local name=$1 c=$2 s=$3 addr=$4; shift 4
  local out=$DIR/traffic
  inns "$s" iperf3 -s -1 -D -I "$out/$name.pid" --logfile "$out/$name.server.log"
  poll 200 inns "$s" bash -c "ss -Hltn 'sport = :5201' | grep -q ." || die "iperf3 server in vm$s does not listen"
  inns "$c" timeout 120 iperf3 -c "$addr" -J "$@" >"$out/$name.json" || die "iperf3 $name failed: $(cat "$out/$name.json")"
  poll 200 bash -c "! kill -0 \$(cat $out/$name.pid 2>/dev/null) 2>/dev/null" || true
  rm -f "$out/$name.pid"
}

cmd_traffic() {
  load_env "$1"
  local out=$DIR/traffic
  mkdir -p "$out"
  mirror_tx "$out/mirror.before"
  # ICMP echo: IPv4 vm1→vm2, IPv6 vm1→vm3, IPv4 vm4→vm3 (5 each, 84 / 104 bytes).
  inns 1 ping -c 5 -i 0.05 -q "$VM2_IP4" >"$out/ping4.txt"
  inns 1 ping -6 -c 5 -i 0.05 -q "$VM3_IP6" >"$out/ping6.txt"
  inns 4 ping -c 5 -i 0.05 -q "$VM3_IP4" >"$out/ping4-b.txt"
  # Warm up the reverse paths too, so no ARP/ND happens inside the measured iperf3 runs.
  inns 3 ping -c 1 -q "$VM2_IP4" >/dev/null
  inns 1 ping -6 -c 1 -q "$VM4_IP6" >/dev/null
  # UDP: fixed datagram size, modest rate, exact count.
  iperf udp4 2 3 "$VM3_IP4" -u -b 2M -l 1000 -k "${UDP_PACKETS:-300}"
  iperf udp6 4 1 "$VM1_IP6" -u -b 2M -l 1000 -k "${UDP_PACKETS:-300}"
  mirror_tx "$out/mirror.after"
  ls "$out"
}

main() {
  local cmd=${1:-} dir=${2:-}
  [ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 up|env|traffic|down DIR"
  case $cmd in
    up) cmd_up "$dir" ;;
    down) cmd_down "$dir" ;;
    env) load_env "$dir"; cat "$DIR/env" ;;
    traffic) cmd_traffic "$dir" ;;
    *) die "unknown command $cmd (up|env|traffic|down)" ;;
  esac
}

main "$@"
