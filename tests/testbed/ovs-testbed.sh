#!/usr/bin/env bash
# Open vSwitch mirror-port testbed: a userspace-datapath bridge with VMs in network namespaces
# and a select-all mirror whose copy mirrorflow captures. Needs root, iproute2, ethtool,
# openvswitch-switch (ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-appctl, ovs-ofctl), iperf3 and
# python3.
#
#   ovs-testbed.sh up DIR        build everything; state, sockets and logs live in DIR
#   ovs-testbed.sh env DIR       print the names and addresses (DIR/env, KEY=VALUE lines)
#   ovs-testbed.sh traffic DIR   generate known traffic between the VMs; results in DIR/traffic/
#   ovs-testbed.sh down DIR      tear down (idempotent; also removes leftovers of crashed runs)
#
# What `up` builds (ID is a fresh 4-hex-digit id, P = mft$ID):
#   ovsdb-server + ovs-vswitchd with OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR in DIR,
#   bridge ${P}br (datapath_type=netdev: no kernel module),
#   vm1..vm5 = namespaces ${P}-vmN, each with eth0 (MAC 52:54:00:77:00:0N) whose veth peer
#     ${P}vN is a bridge port; vm1-vm3 untagged (10.77.0.N/24, fd77::N/64), vm4-vm5 access
#     ports of VLAN 100 (10.77.100.N/24, fd77:0:0:100::N/64),
#   external_ids as libvirt sets them on vm1-vm3 (attached-mac, iface-id, iface-status, vm-id;
#     vm3 without attached-mac, so its MAC is known only from MAC learning) and as OpenStack
#     sets them on vm4-vm5 (attached-mac, iface-id, iface-status, vm-uuid),
#   mirror ${P}m (select-all) with output port ${P}mo, a veth whose peer ${P}mc stays in the root
#     namespace with no addresses (IPv6 off): capture there.
#   Optional: SFLOW_TARGET=127.0.0.1:6343 [SFLOW_SAMPLING=64] [SFLOW_POLLING=1] configures OVS's
#   own sFlow agent (1-in-N packet sampling, counter polling every SFLOW_POLLING seconds).
# `traffic` takes UDP_PACKETS (300), UDP_RATE (2M, iperf3 -b) and TCP_BYTES (20M) from the
# environment.
set -euo pipefail

PREFIX=mft
MARKER=mft-testbed
PY=/usr/bin/python3
VLAN=100
NVMS=5

die() { echo "ovs-testbed: $*" >&2; exit 1; }
need() { for t in "$@"; do command -v "$t" >/dev/null || die "$t is missing (apt-get install iproute2 ethtool openvswitch-switch iperf3 python3)"; done; }

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

ovs_env() {
  local dir=$1
  export OVS_RUNDIR=$dir/run OVS_DBDIR=$dir/db OVS_LOGDIR=$dir/log OVS_SYSCONFDIR=$dir/etc
  export OVS_PKGDATADIR=/usr/share/openvswitch
}

vsctl() { ovs-vsctl --db="unix:$OVS_RUNDIR/db.sock" --timeout=20 "$@"; }

# Pids of testbed daemons (ours: their environment carries MFT_TESTBED_DIR) and of foreign ones.
daemon_pids() {
  local want=$1 pid env
  for pid in $(pgrep -x ovs-vswitchd || true) $(pgrep -x ovsdb-server || true); do
    env=$(tr '\0' '\n' 2>/dev/null </proc/"$pid"/environ) || continue # gone meanwhile
    [ -n "$env" ] || continue
    if grep -q '^MFT_TESTBED_DIR=' <<<"$env"; then
      [ "$want" = ours ] && echo "$pid"
    else
      [ "$want" = foreign ] && echo "$pid"
    fi
  done
  return 0
}

# stop_pid PID [COMM]: TERM, poll, KILL; only if the process is still COMM (a stale pidfile
# may name a reused pid).
stop_pid() {
  local pid=$1 comm=${2:-}
  if [ -n "$comm" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" != "$comm" ]; then return 0; fi
  kill -TERM "$pid" 2>/dev/null || return 0
  poll 100 bash -c "! kill -0 $pid" || { kill -KILL "$pid" 2>/dev/null || true; poll 100 bash -c "! kill -0 $pid" || true; }
}

# testbed_alive DIR: whether the run in DIR is still wanted (its env names a live owner).
testbed_alive() {
  local owner
  owner=$(sed -n 's/^OWNER_PID=//p' "$1/env" 2>/dev/null)
  [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null
}

# Stops the daemons of crashed runs (whose owner is gone; never those of DIR $1), then removes
# every namespace and link of the testbed prefix unless a live run still uses them.
clean_leftovers() {
  local keep=$1 ns link pid dir live=""
  for pid in $(daemon_pids ours); do
    dir=$(tr '\0' '\n' </proc/"$pid"/environ 2>/dev/null | sed -n 's/^MFT_TESTBED_DIR=//p')
    [ "$dir" = "$keep" ] && continue
    if testbed_alive "$dir"; then live=$dir; else stop_pid "$pid"; fi
  done
  [ -z "$live" ] || return 0
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX[0-9a-f]\{4\}-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^$PREFIX[0-9a-f]\{4\}" || true); do
    ip link del "$link" 2>/dev/null || true
  done
}

# Waits (at most MFT_WAIT seconds, default 600) while another live testbed runs: only one
# ovs-vswitchd per machine, so concurrent callers take turns.
wait_turn() {
  local pid dir i
  for ((i = 0; i < ${MFT_WAIT:-600} * 10; i++)); do
    local busy=""
    for pid in $(daemon_pids ours); do
      dir=$(tr '\0' '\n' </proc/"$pid"/environ 2>/dev/null | sed -n 's/^MFT_TESTBED_DIR=//p')
      if testbed_alive "$dir"; then busy=$dir; fi
    done
    [ -z "$busy" ] && return 0
    [ "$i" = 0 ] && echo "ovs-testbed: waiting for the testbed in $busy to go down" >&2
    sleep 0.1
  done
  die "the testbed in $busy is still up after ${MFT_WAIT:-600} s; run \`$0 down $busy\`"
}

cmd_down() {
  local dir=$1
  if [ -f "$dir/$MARKER" ]; then
    ovs_env "$dir"
    local pidf pid
    pidf=$OVS_RUNDIR/ovs-vswitchd.pid
    if [ -f "$pidf" ] && pid=$(cat "$pidf") && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = ovs-vswitchd ]; then
      # --cleanup deletes the datapath and its tap devices.
      timeout 10 ovs-appctl -t "$OVS_RUNDIR/ovs-vswitchd.$pid.ctl" exit --cleanup >/dev/null 2>&1 || true
      poll 100 bash -c "! kill -0 $pid" || stop_pid "$pid" ovs-vswitchd
    fi
    pidf=$OVS_RUNDIR/ovsdb-server.pid
    if [ -f "$pidf" ] && pid=$(cat "$pidf"); then stop_pid "$pid" ovsdb-server; fi
    # iperf3 servers and other helpers started by `traffic`.
    for pidf in "$dir"/traffic/*.pid; do
      if [ -f "$pidf" ]; then
        stop_pid "$(cat "$pidf")" iperf3
        stop_pid "$(cat "$pidf")" python3
      fi
    done
  fi
  clean_leftovers "$dir"
  if [ -f "$dir/$MARKER" ]; then
    find "$dir" -mindepth 1 -delete 2>/dev/null || true
  fi
}

cmd_up() {
  local dir=$1
  need ip ethtool flock ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-appctl ovs-ofctl iperf3 "$PY"
  [ "$(id -u)" = 0 ] || die "must run as root (namespaces, veths, Open vSwitch)"
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  dir=$(cd "$dir" && pwd)
  # One testbed at a time: the lock makes check-and-start atomic, wait_turn waits for a
  # running testbed to go down.
  exec 9>/run/mft-testbed.lock
  flock -w "${MFT_WAIT:-600}" 9 || die "another ovs-testbed.sh holds /run/mft-testbed.lock"
  wait_turn
  local foreign
  foreign=$(daemon_pids foreign)
  [ -z "$foreign" ] || die "an Open vSwitch daemon not started by this testbed is running (pid $(echo $foreign)); only one ovs-vswitchd per machine: stop it first (service openvswitch-switch stop)"
  clean_leftovers ""
  touch "$dir/$MARKER"
  # From here on a failure tears down what was built.
  trap 'echo "ovs-testbed: up failed; tearing down" >&2; cmd_down "$dir"' EXIT

  local id p br
  id=$(od -An -N2 -tx2 /dev/urandom | tr -d ' \n')
  p=$PREFIX$id
  br=${p}br
  ovs_env "$dir"
  mkdir -p "$OVS_RUNDIR" "$OVS_DBDIR" "$OVS_LOGDIR" "$OVS_SYSCONFDIR"
  export MFT_TESTBED_DIR=$dir

  ovsdb-tool create "$OVS_DBDIR/conf.db" "$OVS_PKGDATADIR/vswitch.ovsschema"
  ovsdb-server "$OVS_DBDIR/conf.db" --remote="punix:$OVS_RUNDIR/db.sock" \
    --pidfile --detach --no-chdir --log-file="$OVS_LOGDIR/ovsdb-server.log" -vconsole:err 9>&- \
    2>>"$OVS_LOGDIR/startup.err" || die "ovsdb-server failed: $(cat "$OVS_LOGDIR/startup.err")"
  poll 200 test -S "$OVS_RUNDIR/db.sock" || die "ovsdb-server did not create $OVS_RUNDIR/db.sock"
  vsctl --no-wait init >/dev/null
  ovs-vswitchd "unix:$OVS_RUNDIR/db.sock" --pidfile --detach --no-chdir \
    --log-file="$OVS_LOGDIR/ovs-vswitchd.log" -vconsole:err 9>&- \
    2>>"$OVS_LOGDIR/startup.err" || die "ovs-vswitchd failed: $(cat "$OVS_LOGDIR/startup.err")"
  local vpid
  poll 200 test -s "$OVS_RUNDIR/ovs-vswitchd.pid" || die "ovs-vswitchd wrote no pidfile"
  vpid=$(cat "$OVS_RUNDIR/ovs-vswitchd.pid")
  poll 200 test -S "$OVS_RUNDIR/ovs-vswitchd.$vpid.ctl" || die "ovs-vswitchd has no control socket"
  # Without --no-wait, ovs-vsctl returns once vswitchd has applied the change.
  vsctl add-br "$br" -- set Bridge "$br" datapath_type=netdev \
    other_config:mac-aging-time=3600
  poll 200 ovs-ofctl show "$br" || die "bridge $br does not answer OpenFlow"
  sysctl -qw "net.ipv6.conf.$br.disable_ipv6=1" 2>/dev/null || true

  {
    echo "TESTBED_ID=$id"
    echo "DIR=$dir"
    echo "BRIDGE=$br"
    echo "OVS_RUNDIR=$OVS_RUNDIR"
    echo "DB_SOCK=$OVS_RUNDIR/db.sock"
    echo "CTL_SOCK=$OVS_RUNDIR/ovs-vswitchd.$vpid.ctl"
    echo "VSWITCHD_PID=$vpid"
    echo "OVSDB_PID=$(cat "$OVS_RUNDIR/ovsdb-server.pid")"
    echo "VLAN=$VLAN"
    echo "OWNER_PID=$PPID"
  } >"$dir/env.tmp"

  local i ns host mac ip4 ip6 tag ifid vmid ids vms=""
  for ((i = 1; i <= NVMS; i++)); do
    ns=$p-vm$i
    host=${p}v$i
    mac=52:54:00:77:00:0$i
    if ((i <= 3)); then
      ip4=10.77.0.$i ip6=fd77::$i tag=""
    else
      ip4=10.77.$VLAN.$i ip6=fd77:0:0:$VLAN::$i tag=$VLAN
    fi
    ifid=$(cat /proc/sys/kernel/random/uuid)
    vmid=$(cat /proc/sys/kernel/random/uuid)
    ip netns add "$ns"
    ip link add "$host" type veth peer name "${p}p$i"
    ip link set "${p}p$i" netns "$ns"
    ip -n "$ns" link set "${p}p$i" name eth0
    ip -n "$ns" link set eth0 address "$mac"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.router_solicitations=0 \
      net.ipv6.conf.eth0.accept_dad=0
    ip netns exec "$ns" ethtool -K eth0 tx off tso off gso off gro off >/dev/null
    ethtool -K "$host" tx off tso off gso off gro off >/dev/null
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$ip4/24" dev eth0
    ip -n "$ns" addr add "$ip6/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
    ip link set "$host" up
    case $i in
      1 | 2) ids=(external_ids:attached-mac="\"$mac\"" external_ids:iface-id="$ifid"
        external_ids:iface-status=active external_ids:vm-id="$vmid") ;;
      3) ids=(external_ids:iface-id="$ifid" external_ids:iface-status=active
        external_ids:vm-id="$vmid") ;;
      *) ids=(external_ids:attached-mac="\"$mac\"" external_ids:iface-id="$ifid"
        external_ids:iface-status=active external_ids:vm-uuid="$vmid") ;;
    esac
    if [ -n "$tag" ]; then
      vsctl add-port "$br" "$host" tag="$tag" -- set Interface "$host" "${ids[@]}"
    else
      vsctl add-port "$br" "$host" -- set Interface "$host" "${ids[@]}"
    fi
    vms="$vms${vms:+,}vm$i"
    {
      echo "VM${i}_NS=$ns"
      echo "VM${i}_PORT=$host"
      echo "VM${i}_MAC=$mac"
      echo "VM${i}_IP4=$ip4"
      echo "VM${i}_IP6=$ip6"
      echo "VM${i}_VLAN=${tag:-0}"
      echo "VM${i}_IFACE_ID=$ifid"
      echo "VM${i}_VM_ID=$vmid"
      echo "VM${i}_ATTACHED_MAC=$([ "$i" = 3 ] && echo no || echo yes)"
      echo "VM${i}_IFINDEX=$(cat /sys/class/net/"$host"/ifindex)"
    } >>"$dir/env.tmp"
  done

  local mo=${p}mo mc=${p}mc
  ip link add "$mo" type veth peer name "$mc"
  for host in "$mo" "$mc"; do
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
    ethtool -K "$host" tx off tso off gso off gro off >/dev/null
    ip link set "$host" mtu 9000 up
  done
  vsctl add-port "$br" "$mo" -- --id=@p get Port "$mo" \
    -- --id=@m create Mirror name="${p}m" select-all=true output-port=@p \
    -- set Bridge "$br" mirrors=@m >/dev/null

  if [ -n "${SFLOW_TARGET:-}" ]; then
    vsctl -- --id=@s create sFlow agent=lo target="\"$SFLOW_TARGET\"" header=128 \
      sampling="${SFLOW_SAMPLING:-64}" polling="${SFLOW_POLLING:-1}" -- set Bridge "$br" sflow=@s >/dev/null
    echo "SFLOW_TARGET=$SFLOW_TARGET" >>"$dir/env.tmp"
    echo "SFLOW_SAMPLING=${SFLOW_SAMPLING:-64}" >>"$dir/env.tmp"
    echo "SFLOW_POLLING=${SFLOW_POLLING:-1}" >>"$dir/env.tmp"
  fi

  # Ready when every port has an OpenFlow port number and its link is up.
  local port
  for port in $(for ((i = 1; i <= NVMS; i++)); do echo "${p}v$i"; done) "$mo"; do
    poll 200 bash -c "[ \"\$(ovs-vsctl --db=unix:$OVS_RUNDIR/db.sock get Interface $port link_state)\" = up ] && \
      [ \"\$(ovs-vsctl --db=unix:$OVS_RUNDIR/db.sock get Interface $port ofport)\" -gt 0 ]" ||
      die "port $port did not come up"
  done
  for ((i = 1; i <= NVMS; i++)); do
    echo "VM${i}_OFPORT=$(vsctl get Interface "${p}v$i" ofport)" >>"$dir/env.tmp"
  done
  {
    echo "VMS=$vms"
    echo "MIRROR=${p}m"
    echo "MIRROR_PORT=$mo"
    echo "MIRROR_OFPORT=$(vsctl get Interface "$mo" ofport)"
    echo "CAPTURE_IF=$mc"
    echo "CAPTURE_IFINDEX=$(cat /sys/class/net/"$mc"/ifindex)"
  } >>"$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
  trap - EXIT
  flock -u 9
  cat "$dir/env"
}

load_env() {
  local dir=$1
  [ -f "$dir/env" ] || die "$dir/env is missing: run \`$0 up $dir\` first"
  # shellcheck disable=SC1091
  . "$dir/env"
  ovs_env "$dir"
}

# vmvar N FIELD: value of VM<N>_<FIELD> from the env file.
vmvar() { local v="VM$1_$2"; echo "${!v}"; }

inns() { local n=$1; shift; ip netns exec "$(vmvar "$n" NS)" "$@"; }

dump_ports() { ovs-ofctl dump-ports "$BRIDGE" >"$1"; }

# iperf NAME CLIENT SERVER ADDR IPERF-CLIENT-ARGS...: one iperf3 test, with OVS port counters
# before and after it in NAME.ports.before/after and the client's JSON report in NAME.json.
iperf() {
  local name=$1 c=$2 s=$3 addr=$4; shift 4
  local out=$DIR/traffic
  inns "$s" iperf3 -s -1 -D -I "$out/$name.pid" --logfile "$out/$name.server.log"
  poll 200 inns "$s" bash -c "ss -Hltn 'sport = :5201' | grep -q ." || die "iperf3 server in vm$s does not listen"
  dump_ports "$out/$name.ports.before"
  inns "$c" timeout 120 iperf3 -c "$addr" -J "$@" >"$out/$name.json" || die "iperf3 $name failed: $(cat "$out/$name.json")"
  poll 200 bash -c "! kill -0 \$(cat $out/$name.pid 2>/dev/null) 2>/dev/null" || true
  dump_ports "$out/$name.ports.after"
  rm -f "$out/$name.pid"
}

# dns NAME CLIENT SERVER ADDR COUNT: COUNT DNS queries over UDP port 53, each answered.
dns() {
  local name=$1 c=$2 s=$3 addr=$4 count=$5
  local out=$DIR/traffic
  ip netns exec "$(vmvar "$s" NS)" "$PY" - "$addr" "$count" >"$out/$name.server.log" 2>&1 <<'EOF' &
import socket, sys
addr, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
s.settimeout(30)
for _ in range(count):
    q, peer = s.recvfrom(2048)
    # Response: same id, QR=1 RA=1, one question, one A answer (RFC 1035 4.1).
    ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x4d\x00\x01"
    s.sendto(q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + q[12:] + ans, peer)
print("answered", count)
EOF
  local spid=$!
  echo "$spid" >"$out/$name.pid"
  poll 200 inns "$s" bash -c "ss -Hlun 'sport = :53' | grep -q ." || die "DNS responder in vm$s does not listen"
  inns "$c" timeout 60 "$PY" - "$addr" "$count" >"$out/$name.client.log" 2>&1 <<'EOF'
import socket, sys
addr, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
for i in range(count):
    # Query for vm1.test A (RFC 1035 4.1): id, RD, one question.
    q = i.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" \
        + b"\x03vm1\x04test\x00\x00\x01\x00\x01"
    s.sendto(q, (addr, 53))
    s.recvfrom(2048)
print("queries", count, "query_bytes", len(q))
EOF
  wait "$spid" || die "DNS responder failed: $(cat "$out/$name.server.log")"
  rm -f "$out/$name.pid"
}

cmd_traffic() {
  load_env "$1"
  local out=$DIR/traffic
  mkdir -p "$out"
  # ICMP echo: IPv4 vm1→vm2, IPv6 vm1→vm3, IPv4 in VLAN 100 vm4→vm5 (5 each, 84 / 104 bytes).
  inns 1 ping -c 5 -i 0.05 -q "$VM2_IP4" >"$out/ping4.txt"
  inns 1 ping -6 -c 5 -i 0.05 -q "$VM3_IP6" >"$out/ping6.txt"
  inns 4 ping -c 5 -i 0.05 -q "$VM5_IP4" >"$out/ping4-vlan.txt"
  # Warm up the reverse paths too, so no ARP/ND happens inside the measured iperf3 runs.
  inns 3 ping -c 1 -q "$VM2_IP4" >/dev/null
  inns 5 ping -6 -c 1 -q "$VM4_IP6" >/dev/null
  # DNS-like UDP: vm2 asks vm1 three times.
  dns dns 2 1 "$VM1_IP4" 3
  # UDP: fixed datagram size, modest rate, exact count.
  iperf udp4 2 3 "$VM3_IP4" -u -b "${UDP_RATE:-2M}" -l 1000 -k "${UDP_PACKETS:-300}"
  iperf udp6-vlan 4 5 "$VM5_IP6" -u -b "${UDP_RATE:-2M}" -l 1000 -k "${UDP_PACKETS:-300}"
  # TCP: a rate-limited bulk transfer, compared with OVS's port counters.
  iperf tcp4 1 2 "$VM2_IP4" -b 200M -n "${TCP_BYTES:-20M}"
  iperf tcp6 3 1 "$VM1_IP6" -b 200M -n "${TCP_BYTES:-20M}"
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
