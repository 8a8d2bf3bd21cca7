#!/usr/bin/env bash
# Start or stop a private OVS-DPDK (ovsdb-server + ovs-vswitchd-dpdk) whose
# database, sockets, logs and pidfiles all live in one directory.
# ovs-vswitchd runs in a network namespace of its own: the netdev datapath
# creates tap devices (ovs-netdev, one per bridge) that would otherwise land
# in the host's namespace, outlive the daemon and stop a second instance.
#   ovs-dpdk.sh start DIR   -> prints nothing; DIR/db.sock is ready, vswitchd applied the config
#   ovs-dpdk.sh stop DIR    -> stops both daemons by the pids in their pidfiles
#   ovs-dpdk.sh stop-vswitchd DIR / start-vswitchd DIR / stop-ovsdb DIR / start-ovsdb DIR
#   ovs-dpdk.sh freeze-vswitchd DIR / thaw-vswitchd DIR -> SIGSTOP / SIGCONT: a stalled vSwitch
set -euo pipefail
(( $(nproc) >= 2 )) || { echo "ovs-dpdk.sh: needs 2 CPUs (one for the PMD thread alone)" >&2; exit 1; }
cmd=${1:?usage: ovs-dpdk.sh start|stop|start-vswitchd|stop-vswitchd|freeze-vswitchd|thaw-vswitchd|start-ovsdb|stop-ovsdb DIR}
dir=${2:?usage: ovs-dpdk.sh $cmd DIR}
db="unix:$dir/db.sock"
netns="ovs-$(basename "$dir")"
vsctl() { ovs-vsctl --db="$db" --timeout=30 "$@"; }
# The hex mask of the last CPU, written digit by digit: a shift would wrap
# past 64 CPUs.
last_cpu_mask() {
  local last=$(( $(nproc) - 1 ))
  printf '%x%s' $(( 1 << (last % 4) )) "$(printf '%*s' $(( last / 4 )) '' | tr ' ' 0)"
}

stop_pidfile() {
  local pidfile=$1
  [[ -f $pidfile ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    kill -CONT "$pid" 2>/dev/null || true # a frozen one too
    timeout 10 tail --pid="$pid" -f /dev/null || kill -9 "$pid"
  fi
  rm -f "$pidfile"
}

start_vswitchd() {
  # OVS_RUNDIR keeps dpdkvhostuser sockets and control files in DIR.
  ip netns list | grep -qx "$netns" || ip netns add "$netns"
  # The PMD thread gets the last CPU to itself (pmd-cpu-mask, set at
  # start) and every other thread, DPDK's interrupt thread included, runs
  # on the others, as a deployment isolates its PMD cores. Left to
  # itself, DPDK puts its interrupt thread on the PMD's CPU ("-l 0" leaves
  # only that one), where handling a memif connect or disconnect preempts
  # the PMD thread mid-poll: DPDK 22.11's memif then reads a ring that is
  # not mapped yet or no longer, and ovs-vswitchd dies (README, "memif
  # and DPDK 22.11's server").
  OVS_RUNDIR=$dir taskset -c "0-$(( $(nproc) - 2 ))" nsenter --net="/var/run/netns/$netns" \
    /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk "$db" \
    --pidfile="$dir/vswitchd.pid" --detach --log-file="$dir/vswitchd.log" \
    --unixctl="$dir/vswitchd.ctl"
  # Readiness: vswitchd has applied the current configuration.
  vsctl wait-until Open_vSwitch . dpdk_initialized=true
  vsctl set Open_vSwitch . external_ids:ready=1
}

case $cmd in
start)
  mkdir -p "$dir" /var/run/openvswitch
  ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  "$0" start-ovsdb "$dir"
  vsctl --no-wait init
  vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
    other_config:dpdk-socket-mem=256 other_config:dpdk-socket-limit=512 \
    other_config:pmd-cpu-mask="$(last_cpu_mask)" \
    other_config:dpdk-extra="--no-pci --file-prefix=ovs$$"
  start_vswitchd
  ;;
stop)
  stop_pidfile "$dir/vswitchd.pid"
  stop_pidfile "$dir/ovsdb.pid"
  ip netns delete "$netns" 2>/dev/null || true
  ;;
stop-vswitchd) stop_pidfile "$dir/vswitchd.pid" ;;
start-vswitchd) start_vswitchd ;;
freeze-vswitchd) kill -STOP "$(cat "$dir/vswitchd.pid")" ;;
thaw-vswitchd) kill -CONT "$(cat "$dir/vswitchd.pid")" ;;
start-ovsdb)
  ovsdb-server --remote="punix:$dir/db.sock" --pidfile="$dir/ovsdb.pid" --detach \
    --log-file="$dir/ovsdb.log" --unixctl="$dir/ovsdb.ctl" "$dir/conf.db"
  ;;
stop-ovsdb) stop_pidfile "$dir/ovsdb.pid" ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
