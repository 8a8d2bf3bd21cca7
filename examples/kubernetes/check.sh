#!/usr/bin/env bash
# Offline checks of the Kubernetes deployment (run by .ci/run, as root,
# after `cargo build --release`):
#  1. every manifest validates against the Kubernetes schemas
#     (PyPI kubernetes-validate, installed by .ci/setup);
#  2. every NetworkAttachmentDefinition's config passes the plugin's own
#     parser and component admission (`userspace components --config`);
#  3. the plugin's image builds with buildah (no daemon): the binary and
#     the shared libraries it links, nothing else; it is inspected, and
#     the binary runs inside the image's root (chroot) with only what the
#     image holds.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
plugin=$root/target/release/userspace
venv=${USERSPACE_CNI_VENV:-/opt/userspace-cni-venv}
work=$(mktemp -d /tmp/uscni-k8s.XXXXXX)
buildah_opts=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
cleanup() {
  [[ -n "${mnt_ctr:-}" ]] && buildah "${buildah_opts[@]}" rm "$mnt_ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== manifests against the Kubernetes schemas"
"$venv/bin/kubernetes-validate" --strict --no-warn ./*.yaml

echo "== NetworkAttachmentDefinition configs through the plugin's parser"
"$venv/bin/python" - "$work" ./nad-*.yaml <<'PY'
import json, sys, yaml
out = sys.argv[1]
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        assert doc["apiVersion"] == "k8s.cni.cncf.io/v1", path
        assert doc["kind"] == "NetworkAttachmentDefinition", path
        assert set(doc) <= {"apiVersion", "kind", "metadata", "spec"}, path
        assert set(doc["spec"]) == {"config"}, path
        config = json.loads(doc["spec"]["config"])
        assert config["type"] == "userspace", path
        name = doc["metadata"]["name"]
        assert config["name"] == name, f"{path}: config name differs from metadata.name"
        open(f"{out}/{name}.conf", "w").write(doc["spec"]["config"])
PY
for conf in "$work"/*.conf; do
  report=$("$plugin" components --state-dir "$work/state" --config "$conf")
  echo "$report" | sed -n '/^network/,$p'
  if echo "$report" | grep -q "REFUSED"; then
    echo "check.sh: $(basename "$conf"): a component would be refused" >&2
    exit 1
  fi
done

echo "== the plugin's image (buildah)"
ctr=$(buildah "${buildah_opts[@]}" from scratch)
buildah "${buildah_opts[@]}" copy "$ctr" "$plugin" /userspace >/dev/null
for lib in $(ldd "$plugin" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}'); do
  buildah "${buildah_opts[@]}" copy "$ctr" "$lib" "$lib" >/dev/null
done
buildah "${buildah_opts[@]}" config --entrypoint '["/userspace"]' \
  --label org.opencontainers.image.title=userspace-cni \
  --label org.opencontainers.image.description="userspace CNI plugin (memif, vhost-user on OVS-DPDK or VPP)" "$ctr"
buildah "${buildah_opts[@]}" commit --quiet "$ctr" localhost/userspace-cni:latest >/dev/null
buildah "${buildah_opts[@]}" rm "$ctr" >/dev/null
entrypoint=$(buildah "${buildah_opts[@]}" inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' localhost/userspace-cni:latest)
[[ "$entrypoint" == '[/userspace]' ]] || { echo "check.sh: entrypoint is $entrypoint" >&2; exit 1; }
mnt_ctr=$(buildah "${buildah_opts[@]}" from localhost/userspace-cni:latest)
mnt=$(buildah "${buildah_opts[@]}" mount "$mnt_ctr")
files=$(cd "$mnt" && find . -type f | sort)
echo "image files:"; echo "$files" | sed 's/^/  /'
chroot "$mnt" /userspace --version
size=$(du -sh "$mnt" | cut -f1)
echo "OK: manifests valid, NAD configs admitted, image localhost/userspace-cni:latest ($size) runs its binary"
