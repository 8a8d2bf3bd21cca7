#!/usr/bin/env bash
# A real single-node Kubernetes for the tests: Debian's containerd (CRI)
# and runc, and the kubelet build.sh built, registered with an API server
# the caller started. Everything stays in DIR and in the caller's network
# namespace NETNS (the daemons run there; the pods' first network puts its
# host-side veths there, not in the host's namespace).
#
#   node.sh start DIR NETNS NODE_NAME NODE_IP
#   node.sh stop DIR
#
# The caller writes, before start:
#   DIR/kubelet.kubeconfig   how the kubelet reaches the API server
#   DIR/net.d/               containerd's CNI configs (the first makes eth0)
#   DIR/cni-bin/             the CNI plugins those configs name, and loopback
#   DIR/rootfs/              the files of image localhost/userspace-app:latest
# and passes, in the environment, whatever the CNI plugins should see
# (containerd hands its environment to them).
#
# start returns once the kubelet is running; the caller waits for the node
# to be Ready through the API. Delete the pods through the API before stop.
# stop also stops containers a failed test left, unmounts what is mounted
# below DIR, and puts back the host sysctls the kubelet changed.
set -euo pipefail

bin=${K8S_DIR:-/opt/userspace-cni-k8s}/bin
cmd=$1 dir=$2
buildah_opts=(--root "$dir/buildah/storage" --runroot "$dir/buildah/run" --storage-driver vfs)

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# The host-wide sysctls the kubelet sets to its liking at start (it has no
# flag to leave them alone but one that fails on them): saved before it
# starts, put back when it stops.
sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
         kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

stop() {
  if [[ -f $dir/kubelet.pid ]]; then
    stop_pid "$(cat "$dir/kubelet.pid")"
    rm -f "$dir/kubelet.pid"
  fi
  if [[ -f $dir/sysctls.saved ]]; then
    while read -r line; do sysctl -qw "$line" || true; done <"$dir/sysctls.saved"
    rm -f "$dir/sysctls.saved"
  fi
  # Containers a failed test left running outlive their shims: runc, with
  # this node's own root, stops them.
  for root in "$dir"/runc/*/; do
    [[ -d $root ]] || continue
    for id in $(runc --root "$root" list -q 2>/dev/null); do
      runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  if [[ -f $dir/containerd.pid ]]; then
    stop_pid "$(cat "$dir/containerd.pid")"
    rm -f "$dir/containerd.pid"
  fi
  # The shims this containerd started outlive it: they are the processes
  # whose command line names its socket.
  for cmdline in /proc/[0-9]*/cmdline; do
    if tr '\0' ' ' <"$cmdline" 2>/dev/null | grep -qF -- "-address $dir/containerd.sock"; then
      pid=${cmdline#/proc/}
      stop_pid "${pid%/cmdline}"
    fi
  done
  # The kubelet leaves its volumes and root mounted, containerd its
  # snapshots and sandbox shm: everything mounted below DIR, deepest first.
  { findmnt -rn -o TARGET | grep -F "$dir/" || true; } | sort -r | while read -r target; do
    umount -l "$target" 2>/dev/null || true
  done
}

# An image from a root filesystem dir, imported into containerd's k8s.io
# namespace as NAME (docker-archive keeps the name for `ctr import`).
image() {
  local rootfs=$1 name=$2 ctr
  shift 2
  ctr=$(buildah "${buildah_opts[@]}" from scratch)
  buildah "${buildah_opts[@]}" copy "$ctr" "$rootfs" / >/dev/null
  buildah "${buildah_opts[@]}" config "$@" "$ctr"
  buildah "${buildah_opts[@]}" commit --quiet "$ctr" "$name" >/dev/null
  buildah "${buildah_opts[@]}" rm "$ctr" >/dev/null
  rm -f "$dir/image.tar"
  buildah "${buildah_opts[@]}" push --quiet "$name" "docker-archive:$dir/image.tar:$name" >/dev/null
  ctr --address "$dir/containerd.sock" -n k8s.io images import "$dir/image.tar" >/dev/null
  rm -f "$dir/image.tar"
}

case $cmd in
stop) stop ;;
start)
  netns=$3 node=$4 node_ip=$5
  mkdir -p "$dir/containerd" "$dir/kubelet" "$dir/kubelet-pki" "$dir/kubelet-plugins" "$dir/runc"

  # This sandbox denies a negative oom_score_adj, and the kubelet asks
  # -998 for pod sandboxes: runc gets the bundle with 0 instead.
  cat >"$dir/runc-wrapper" <<'EOF'
#!/bin/sh
prev=
for arg in "$@"; do
  [ "$prev" = --bundle ] && sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$arg/config.json"
  prev=$arg
done
exec runc "$@"
EOF
  chmod 755 "$dir/runc-wrapper"

  # The hard RLIMIT_NOFILE here is 20000: containers start from a spec
  # whose rlimits stay within it.
  ctr oci spec | python3 -c '
import json, sys
spec = json.load(sys.stdin)
for limit in spec["process"].get("rlimits", []):
    limit["hard"] = min(limit["hard"], 20000)
    limit["soft"] = min(limit["soft"], 20000)
json.dump(spec, sys.stdout)' >"$dir/base-spec.json"

  cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:test"
  enable_selinux = false
  # Pods' network namespaces in the state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$dir/cni-bin"
    conf_dir = "$dir/net.d"
    max_conf_num = 2
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      base_runtime_spec = "$dir/base-spec.json"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$dir/runc-wrapper"
        Root = "$dir/runc"
        SystemdCgroup = false
EOF
  nsenter --net="$netns" containerd --config "$dir/containerd.toml" >"$dir/containerd.log" 2>&1 &
  echo $! >"$dir/containerd.pid"
  until_ok 30 ctr --address "$dir/containerd.sock" version || {
    tail -20 "$dir/containerd.log" >&2
    echo "containerd did not start" >&2
    stop
    exit 1
  }

  # The sandbox ("pause") image: a shell that waits to be killed.
  mkdir -p "$dir/pause-rootfs/bin"
  cp /bin/busybox "$dir/pause-rootfs/bin/busybox"
  ln -sf busybox "$dir/pause-rootfs/bin/sh"
  image "$dir/pause-rootfs" localhost/pause:test \
    --entrypoint '["/bin/sh", "-c", "trap \"exit 0\" TERM INT; while :; do /bin/busybox sleep 3600 & wait; done"]'
  image "$dir/rootfs" localhost/userspace-app:latest --entrypoint '[]' --cmd '[]'

  [[ -f $dir/sysctls.saved ]] || for key in "${sysctls[@]}"; do
    echo "$key=$(sysctl -n "$key")"
  done >"$dir/sysctls.saved"
  nsenter --net="$netns" "$bin/kubelet" \
    --kubeconfig "$dir/kubelet.kubeconfig" \
    --root-dir "$dir/kubelet" --cert-dir "$dir/kubelet-pki" \
    --volume-plugin-dir "$dir/kubelet-plugins" \
    --container-runtime remote \
    --container-runtime-endpoint "unix://$dir/containerd.sock" \
    --pod-infra-container-image localhost/pause:test \
    --cgroup-driver cgroupfs --cgroups-per-qos=false --enforce-node-allocatable= \
    --fail-swap-on=false --make-iptables-util-chains=false \
    --hostname-override "$node" --node-ip "$node_ip" \
    --address 127.0.0.1 --healthz-bind-address 127.0.0.1 --read-only-port 0 \
    --image-gc-high-threshold 100 --image-gc-low-threshold 99 \
    --v 2 >"$dir/kubelet.log" 2>&1 &
  echo $! >"$dir/kubelet.pid"
  until_ok 30 nsenter --net="$netns" curl -sf http://127.0.0.1:10248/healthz || {
    tail -30 "$dir/kubelet.log" >&2
    echo "the kubelet did not start" >&2
    stop
    exit 1
  }
  ;;
*)
  echo "usage: $0 start DIR NETNS NODE_NAME NODE_IP | stop DIR" >&2
  exit 2
  ;;
esac
