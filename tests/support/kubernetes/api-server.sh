#!/usr/bin/env bash
# A private Kubernetes API server for the tests: Debian's etcd and the
# kube-apiserver build.sh built, on loopback, data in DIR, RBAC on,
# static bearer tokens from DIR/tokens.csv (written by the caller).
#
#   api-server.sh start DIR ETCD_PORT ETCD_PEER_PORT API_PORT
#   api-server.sh stop DIR
#
# start returns once the server answers /readyz and has accepted a write
# (writes can fail for a few seconds after /readyz); it leaves DIR/ca.crt
# (the CA of the server's self-signed chain) and DIR/*.log.
set -euo pipefail

bin=${K8S_DIR:-/opt/userspace-cni-k8s}/bin
cmd=$1 dir=$2

stop() {
  for name in apiserver etcd; do
    [[ -f $dir/$name.pid ]] || continue
    pid=$(cat "$dir/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/$name.pid"
  done
}

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

case $cmd in
stop) stop ;;
start)
  etcd_port=$3 peer_port=$4 api_port=$5
  admin=$(awk -F, '$2 == "admin" {print $1}' "$dir/tokens.csv")
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  etcd --name test --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "test=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  until_ok 30 curl -sf "http://127.0.0.1:$etcd_port/health" || {
    tail -20 "$dir/etcd.log" >&2
    echo "etcd did not start" >&2
    stop
    exit 1
  }
  "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$api_port" --insecure-port 0 \
    --cert-dir "$dir/certs" \
    --authorization-mode RBAC \
    --token-auth-file "$dir/tokens.csv" \
    --service-account-key-file "$dir/sa.pub" \
    --service-account-signing-key-file "$dir/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.96.0.0/16 \
    --disable-admission-plugins ServiceAccount \
    >"$dir/apiserver.log" 2>&1 &
  echo $! >"$dir/apiserver.pid"
  url=https://127.0.0.1:$api_port
  until_ok 60 curl -skf -H "Authorization: Bearer $admin" "$url/readyz" || {
    tail -20 "$dir/apiserver.log" >&2
    echo "kube-apiserver did not become ready" >&2
    stop
    exit 1
  }
  # The second certificate of the self-signed chain is its CA.
  awk '/BEGIN CERT/ {n++} n == 2' "$dir/certs/apiserver.crt" >"$dir/ca.crt"
  # Created, or created by an earlier try whose answer was lost.
  first_write() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/ca.crt" \
      -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -X POST \
      --data '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ready"}}' \
      "$url/api/v1/namespaces/default/configmaps")
    [[ $code == 201 || $code == 409 ]]
  }
  until_ok 30 first_write || {
    tail -20 "$dir/apiserver.log" >&2
    echo "kube-apiserver took no write" >&2
    stop
    exit 1
  }
  ;;
*)
  echo "usage: $0 start DIR ETCD_PORT ETCD_PEER_PORT API_PORT | stop DIR" >&2
  exit 2
  ;;
esac
