#!/usr/bin/env bash
# A/B of two plugin binaries on one private OVS-DPDK: ADD+DEL of a
# vhost-user client port on an existing bridge, host-local IPAM, the two
# binaries interleaved round by round (order alternating), medians of
# wall time and of the plugin's own CPU time (its debug log). Run figures
# move between runs on shared virtual machines; an A/B in one run does not.
#
#   tests/support/cni-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]   (as root)
#
# An old binary: git worktree add /tmp/old <rev> && cargo build --release
# there (or check out the crates that changed, build, copy the binary).
set -euo pipefail
old=${1:?usage: cni-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]}
new=${2:?usage: cni-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]}
rounds=${3:-40}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/cni-ab.XXXXXX)
ns=cniab$$
cleanup() {
  "$repo/tests/support/ovs-dpdk.sh" stop "$work/ovs" || true
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "ovs-$(basename "$work/ovs")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/ovs" "$work/shared" "$work/ipam" "$work/state"
"$repo/tests/support/ovs-dpdk.sh" start "$work/ovs"
ovs-vsctl --db="unix:$work/ovs/db.sock" add-br brab -- set bridge brab datapath_type=netdev
ip netns add "$ns"
# The test policy, its state dir moved into this run's dir.
python3 - "$repo/tests/fixtures/node-policy-tests.json" "$work" <<'PY'
import json, sys
policy = json.load(open(sys.argv[1]))
policy["stateDir"] = sys.argv[2] + "/state"
json.dump(policy, open(sys.argv[2] + "/policy.json", "w"))
PY
cat > "$work/net.json" <<JSON
{"cniVersion": "1.0.0", "type": "userspace", "name": "abnet", "logLevel": "debug",
 "stateDir": "$work/state/net", "sharedDir": "$work/shared",
 "host": {"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "bridge", "vhost": {"mode": "client"},
          "bridge": {"bridgeName": "brab"}, "ovs": {"dbSocket": "$work/ovs/db.sock", "vhostSockDir": "$work/ovs"}},
 "container": {"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "interface"},
 "ipam": {"type": "host-local", "subnet": "10.79.0.0/24", "dataDir": "$work/ipam"}}
JSON
python3 - "$old" "$new" "$rounds" "$work" "$ns" <<'PY'
import json, os, re, statistics, subprocess, sys, time
old, new, rounds, work, ns = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
conf = open(work + "/net.json", "rb").read()
env = dict(os.environ, CNI_IFNAME="net1", CNI_PATH="/usr/lib/cni",
           USERSPACE_CNI_POLICY=work + "/policy.json")
def call(binary, command, cid):
    e = dict(env, CNI_COMMAND=command, CNI_CONTAINERID=cid,
             CNI_NETNS="/var/run/netns/" + ns if command == "ADD" else "")
    t = time.perf_counter()
    run = subprocess.run([binary], input=conf, env=e, capture_output=True)
    wall = time.perf_counter() - t
    if run.returncode != 0:
        sys.exit(f"{binary} {command}: {run.stdout.decode()} {run.stderr.decode()}")
    cpu = re.search(r"own cost cpu_micros=(\d+)", run.stderr.decode())
    return wall * 1e3, int(cpu.group(1)) / 1e3
times = {b: {"add": [], "del": [], "cpu_add": [], "cpu_del": []} for b in (old, new)}
# Round 0 warms up (the component cache, the PMD thread) and is not kept.
for r in range(rounds + 1):
    for i, b in enumerate((old, new) if r % 2 == 0 else (new, old)):
        cid = f"ab{r:04d}{i}"
        add, cpu_add = call(b, "ADD", cid)
        dele, cpu_del = call(b, "DEL", cid)
        if r:
            for k, v in (("add", add), ("del", dele), ("cpu_add", cpu_add), ("cpu_del", cpu_del)):
                times[b][k].append(v)
print(f"medians of {rounds} interleaved rounds, ms (vhost-user client port, existing bridge, host-local)")
for label, b in (("old", old), ("new", new)):
    m = {k: statistics.median(v) for k, v in times[b].items()}
    print(f"{label}  ADD {m['add']:6.2f}  DEL {m['del']:6.2f}  ADD+DEL {m['add'] + m['del']:6.2f}"
          f"  | CPU ADD {m['cpu_add']:5.2f}  DEL {m['cpu_del']:5.2f}  ({b})")
PY
