#!/usr/bin/env bash
# The tutorial, on this machine: two containers (network namespaces) get a
# memif (or vhost-user) interface each on a bridge of a private OVS-DPDK, through the
# `userspace` CNI plugin called exactly as a runtime calls it; the
# container app in each connects its interface, and the second container
# pings the first through the vSwitch.
#
#   sudo examples/memif-ping/run.sh [--iftype memif|vhostuser] [--vswitch ovs-dpdk|vpp]
#
# It installs what it needs, builds the plugin and the app, shows the
# vSwitch before and after, the CNI results and the container data, starts
# `userspace-app up` in each container, pings 5 times from the second to
# the first, shows the host port counters, CHECKs, stops the apps, DELs
# both attachments and shows that nothing is left. Exit status 0 only if
# every step held (all 5 echoes answered).
#
# With --iftype vhostuser the same run uses vhost-user: OVS ports of type
# dpdkvhostuserclient, and the app in each container serves the socket as
# the virtio-net driver side.
#
# With --vswitch vpp the host side is `engine: vpp` against the VPP TEST
# DOUBLE (tests/vpp-test-double; VPP cannot be installed here): it speaks
# VPP's binary API, keeps VPP's state, and switches memif frames between
# the members of bridge domain 4. memif only.
set -euo pipefail

iftype=memif
vswitch=ovs-dpdk
while (($#)); do
  case $1 in
    --iftype) iftype=${2:?--iftype needs memif or vhostuser}; shift 2 ;;
    --vswitch) vswitch=${2:?--vswitch needs ovs-dpdk or vpp}; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $iftype == memif || $iftype == vhostuser ]] || { echo "--iftype: memif or vhostuser" >&2; exit 2; }
[[ $vswitch == ovs-dpdk || $vswitch == vpp ]] || { echo "--vswitch: ovs-dpdk or vpp" >&2; exit 2; }
[[ $vswitch == ovs-dpdk || $iftype == memif ]] || { echo "--vswitch vpp: memif only (the VPP test double switches memif frames)" >&2; exit 2; }

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

step "Installing what the demo needs and building the plugin"
.ci/setup
cargo build --release --locked --quiet
[[ $vswitch == vpp ]] && cargo build --release --locked --quiet -p vpp-test-double
plugin=$root/target/release/userspace
app=$root/target/release/userspace-app
papi_python=/opt/userspace-cni-venv/bin/python

work=$(mktemp -d /tmp/userspace-demo.XXXXXX)
ovs=$work/ovs
netns=(demo-c1-$$ demo-c2-$$)
app_pids=()
double_pid=
stop_apps() {
  for pid in "${app_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${app_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  app_pids=()
}
cleanup() {
  stop_apps
  for ns in "${netns[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
  if [[ $vswitch == vpp ]]; then
    [[ -n $double_pid ]] && { kill "$double_pid" 2>/dev/null || true; wait "$double_pid" 2>/dev/null || true; }
  else
    tests/support/ovs-dpdk.sh stop "$ovs" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

vpp_state=$work/vpp/state
if [[ $vswitch == vpp ]]; then
  step "Starting the VPP TEST DOUBLE (not VPP: VPP cannot be installed here) on $work/vpp/api.sock"
  mkdir -p "$work/vpp"
  "$root/target/release/vpp-test-double" --socket "$work/vpp/api.sock" --state-file "$vpp_state" &
  double_pid=$!
  for _ in $(seq 100); do
    [[ -S $work/vpp/api.sock && -f $vpp_state ]] && break
    kill -0 "$double_pid" 2>/dev/null || fail "the VPP test double exited"
    sleep 0.1
  done
  [[ -S $work/vpp/api.sock && -f $vpp_state ]] || fail "the VPP test double did not start"
  "$papi_python" tests/vpp-papi/api_json.py "$work/vpp/defs" || fail "converting the VPP definitions for vpp_papi"
else
  step "Starting a private OVS-DPDK in $ovs"
  tests/support/ovs-dpdk.sh start "$ovs"
fi
vsctl() { ovs-vsctl --db="unix:$ovs/db.sock" "$@"; }
# Live port counters from ovs-vswitchd (the statistics column in the
# database is refreshed only every few seconds).
rx_packets() {
  ovs-ofctl dump-ports "unix:$ovs/br4.mgmt" "$(vsctl get Interface "$1" ofport)" |
    sed -n 's/.*rx pkts=\([0-9]*\).*/\1/p'
}
for ns in "${netns[@]}"; do ip netns add "$ns"; done

conf=$work/90-userspace.conf
if [[ $vswitch == vpp ]]; then
  engine=vpp
  host_switch='"bridge": { "bridgeId": 4 },
    "vpp": { "apiSocket": "'$work/vpp/api.sock'" }'
else
  engine=ovs-dpdk
  host_switch='"bridge": { "bridgeName": "br4" },
    "ovs": { "dbSocket": "unix:'$ovs/db.sock'", "vhostSockDir": "'$ovs'" }'
fi
cat > "$conf" <<JSON
{
  "cniVersion": "1.0.0",
  "type": "userspace",
  "name": "memif-network",
  "stateDir": "$work/state",
  "sharedDir": "$work/shared",
  "host": {
    "engine": "$engine",
    "iftype": "$iftype",
    "netType": "bridge",
    "memif": { "role": "master", "mode": "ethernet" },
    "vhost": { "mode": "client" },
    $host_switch
  },
  "container": {
    "engine": "$engine",
    "iftype": "$iftype",
    "netType": "interface",
    "memif": { "role": "slave", "mode": "ethernet" }
  },
  "ipam": {
    "type": "host-local",
    "subnet": "192.168.210.0/24",
    "routes": [ { "dst": "0.0.0.0/0" } ],
    "dataDir": "$work/ipam"
  }
}
JSON
step "The network config"
cat "$conf"

# The node policy is the operator's: which host paths, sockets and
# components network configs may name (a real node keeps it at
# /etc/cni/userspace/policy.json, or runs on the built-in defaults). This
# one allows exactly the demo's private dirs and vSwitch socket.
policy=$work/policy.json
cat > "$policy" <<JSON
{
  "stateDir": "$work/state",
  "sharedDirRoots": ["$work/shared"],
  "ovsDbSockets": ["$ovs/db.sock"],
  "vhostSockDirs": ["$ovs"],
  "vppApiSockets": ["$work/vpp/api.sock"]
}
JSON
step "The node policy (USERSPACE_CNI_POLICY)"
cat "$policy"
export USERSPACE_CNI_POLICY=$policy

# VPP's own Python client (vpp_papi, installed by .ci/setup) shows the
# double, as `vppctl show` shows VPP in the tutorial.
vpp_show() { "$papi_python" tests/vpp-papi/probe.py "$work/vpp/defs" "$work/vpp/api.sock" show --text; }
show_vswitch() {
  if [[ $vswitch == vpp ]]; then
    echo "# the VPP test double, as VPP's own Python client (vpp_papi) sees it"
    vpp_show
  else
    vsctl show
  fi
}
step "The host vSwitch before"
show_vswitch
vpp_before=$( [[ $vswitch == vpp ]] && cat "$vpp_state" || true)

cni() { # cni COMMAND CONTAINER-ID NETNS
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=net1 CNI_PATH=/usr/lib/cni \
    "$plugin" < "$conf"
}
ids=(3f2a9c0b1d4e5f60718293a4b5c6d7e8 7b1c2d3e4f5061728394a5b6c7d8e9f0)
results=()
for i in 0 1; do
  step "ADD container ${ids[$i]:0:12} (netns ${netns[$i]})"
  out=$(cni ADD "${ids[$i]}" "/var/run/netns/${netns[$i]}") || fail "ADD: $out"
  results+=("$out")
  echo "$out"
done

if [[ $vswitch == vpp ]]; then
  step "The host vSwitch after: two memifs in bridge domain 4"
  show_vswitch
  memifs=$(grep -o 'MemifState' "$vpp_state" | wc -l)
  ((memifs == 2)) || fail "expected 2 memifs, found $memifs"
  grep -Eq '4: BridgeDomainState \{[^}]*members: \{[0-9]+, [0-9]+\}' "$vpp_state" \
    || fail "bridge domain 4 does not hold both memifs"
  seen=$(vpp_show)
  (($(grep -c 'role master admin-up' <<<"$seen") == 2)) || fail "vpp_papi does not see two master memifs up"
  (($(grep -c 'l2 bridge bd_id 4 memif' <<<"$seen") == 2)) || fail "vpp_papi does not see two memifs in bridge domain 4"
else
  step "The host vSwitch after: two ports on br4"
  show_vswitch
  ports=$(vsctl list-ports br4 | wc -l)
  ((ports == 2)) || fail "expected 2 ports on br4, found $ports"
  for port in $(vsctl list-ports br4); do
    err=$(vsctl get Interface "$port" error)
    [[ $err == "[]" ]] || fail "port $port: $err"
  done
fi

step "The container data each container reads"
for i in 0 1; do
  file=$work/shared/${ids[$i]:0:12}/configData-${ids[$i]:0:12}-net1.json
  [[ -f $file ]] || fail "missing $file"
  echo "# $file"; cat "$file"; echo
done
ls -l "$work"/shared/*/

dirs=("$work/shared/${ids[0]:0:12}" "$work/shared/${ids[1]:0:12}")
for i in 0 1; do
  step "Container ${ids[$i]:0:12}: userspace-app up (in netns ${netns[$i]})"
  ip netns exec "${netns[$i]}" "$app" --dir "${dirs[$i]}" up 2>"$work/app$i.log" &
  app_pids+=($!)
  "$app" --dir "${dirs[$i]}" wait --timeout-secs 15 || fail "container $i: interface did not connect ($(cat "$work/app$i.log"))"
done

ports=()
[[ $vswitch == vpp ]] || ports=($(vsctl list-ports br4))
rx_before=()
for port in "${ports[@]}"; do rx_before+=("$(rx_packets "$port")"); done

peer_ip=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ips"][0]["address"].split("/")[0])' "${results[0]}")
through=OVS-DPDK
[[ $vswitch == vpp ]] && through="the VPP TEST DOUBLE"
step "Container ${ids[1]:0:12} pings container ${ids[0]:0:12} ($peer_ip) over $iftype through $through"
out=$(ip netns exec "${netns[1]}" "$app" --dir "${dirs[1]}" ping "$peer_ip" --count 5 -i 0.2) \
  || fail "ping: $out"
echo "$out"
grep -q "5 packets transmitted, 5 received" <<< "$out" || fail "not all 5 echoes were answered"

((${#ports[@]})) && step "The host port counters went up"
for n in "${!ports[@]}"; do
  after=$(rx_packets "${ports[$n]}")
  echo "${ports[$n]}: rx_packets ${rx_before[$n]} -> $after"
  ((after >= rx_before[n] + 5)) || fail "port ${ports[$n]} did not count the pings"
done
for i in 0 1; do
  echo "# container ${ids[$i]:0:12}: userspace-app show"
  "$app" --dir "${dirs[$i]}" show
done

step "CHECK both attachments"
for i in 0 1; do
  chk=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["prevResult"]=json.loads(sys.argv[2]); print(json.dumps(c))' "$conf" "${results[$i]}")
  CNI_COMMAND=CHECK CNI_CONTAINERID=${ids[$i]} CNI_NETNS=/var/run/netns/${netns[$i]} CNI_IFNAME=net1 \
    CNI_PATH=/usr/lib/cni "$plugin" <<< "$chk" || fail "CHECK ${ids[$i]}"
  echo "container ${ids[$i]:0:12}: ok"
done

step "Stopping the container apps (the containers exit)"
stop_apps

step "DEL both (and DEL again: it succeeds twice)"
for i in 0 1; do
  cni DEL "${ids[$i]}" "/var/run/netns/${netns[$i]}" || fail "DEL ${ids[$i]}"
  cni DEL "${ids[$i]}" "/var/run/netns/${netns[$i]}" || fail "second DEL ${ids[$i]}"
done

step "Nothing is left"
show_vswitch
if [[ $vswitch == vpp ]]; then
  [[ $(cat "$vpp_state") == "$vpp_before" ]] || fail "the VPP test double's state differs from before the ADDs"
else
  vsctl br-exists br4 && fail "bridge br4 is still there"
fi
left=$(find "$work/shared" "$work/state/attachments" -mindepth 1 2>/dev/null; grep -rl "${ids[0]}\|${ids[1]}" "$work/ipam" 2>/dev/null || true)
[[ -z $left ]] || fail "left behind: $left"
echo "no vSwitch interfaces, no bridge, no sockets, no records, no IPAM reservations"

printf '\n\033[1mOK: two containers pinged each other over %s through %s; nothing left behind\033[0m\n' "$iftype" "$through"
