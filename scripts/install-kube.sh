#!/usr/bin/env bash
# Installs, idempotently, the Kubernetes peers of the end-to-end tests:
#   - etcd, from Debian's etcd-server, when `etcd` is missing;
#   - kube-apiserver and kubelet v1.34.4, built from the k8s.io/kubernetes
#     Go module into a cache outside the repo (about 10 minutes each cold on
#     2 cores; nothing is done when a binary is already there);
#   - the kubelet's data plane from Debian: containerd, runc, the CNI
#     plugins (bridge, host-local) and busybox-static (the test images are
#     made from it by e2e/harness/kubelet.go);
#   - kubectl, which must already be on the machine.
# The binaries land in ${BASTION_CACHE:-$HOME/.cache/bastion}/kube/v1.34.4/,
# where e2e/harness/kube.go and kubelet.go look for them.
set -euo pipefail

KUBE_VERSION=v1.34.4
# The staging modules (k8s.io/api, ...) are published as v0.MINOR.PATCH.
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
CACHE="${BASTION_CACHE:-$HOME/.cache/bastion}"
KUBE_DIR="$CACHE/kube/$KUBE_VERSION"
APISERVER="$KUBE_DIR/kube-apiserver"
KUBELET="$KUBE_DIR/kubelet"

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

# etcd.
if ! command -v etcd >/dev/null 2>&1; then
  echo "installing: etcd-server"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >/dev/null
fi

# The kubelet's data plane: Debian's containerd, runc, CNI plugins, and a
# static busybox for the test images; nft and ip masquerade the pods'
# traffic to the host's end of the egress veth (e2e/harness/kubelet_net.go).
missing=""
for pair in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins /bin/busybox:busybox-static /usr/sbin/nft:nftables /usr/sbin/ip:iproute2; do
  probe="${pair%%:*}" pkg="${pair#*:}"
  case "$probe" in
    /*) [ -x "$probe" ] || missing="$missing $pkg" ;;
    *) command -v "$probe" >/dev/null 2>&1 || missing="$missing $pkg" ;;
  esac
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq $missing >/dev/null
  # The harness starts its own containerd in a private namespace; the
  # package's system service is not needed and would only hold the host's
  # /run/containerd.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet containerd 2>/dev/null; then
    $sudo systemctl disable --now containerd >/dev/null 2>&1 || true
  fi
fi

# kubectl: not installed here, only checked.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubectl is missing: install kubectl (a client within one minor version of $KUBE_VERSION) and run this again" >&2
  exit 1
fi

# build_kube CMD DEST: builds k8s.io/kubernetes/cmd/CMD at KUBE_VERSION into
# DEST, unless DEST is already there.
build_kube() {
  local cmd=$1 dest=$2
  [ -x "$dest" ] && return 0
  echo "building $cmd $KUBE_VERSION into $dest (about 10 minutes cold on 2 cores)"
  mkdir -p "$KUBE_DIR"
  local build
  build="$(mktemp -d "$CACHE/kube/build.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$build'" EXIT
  export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0
  # k8s.io/kubernetes replaces its staging modules with ./staging/src/...;
  # a module that requires it must map each of them to its published version.
  local gomod staging
  gomod="$(cd "$build" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p')"
  if [ -z "$gomod" ] || [ ! -f "$gomod" ]; then
    echo "could not download k8s.io/kubernetes@$KUBE_VERSION" >&2
    exit 1
  fi
  staging="$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod" | sort -u)"
  if [ -z "$staging" ]; then
    echo "found no staging replaces in $gomod" >&2
    exit 1
  fi
  {
    echo "module bastion.local/kubebuild"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    for m in $staging; do
      echo "	$m => $m $STAGING_VERSION"
    done
    echo ")"
  } >"$build/go.mod"
  local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version minor now ldflags start p
  minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  ldflags="-s -w"
  for p in $pkg $cpkg; do
    ldflags="$ldflags -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags="$ldflags -X $p.gitTreeState=clean -X $p.buildDate=$now"
  done
  start=$(date +%s)
  (cd "$build" && go build -trimpath -ldflags "$ldflags" -o "$build/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  mv "$build/$cmd" "$dest.tmp"
  mv "$dest.tmp" "$dest"
  rm -rf "$build"
  trap - EXIT
  echo "built $cmd $KUBE_VERSION in $(($(date +%s) - start))s"
}

build_kube kube-apiserver "$APISERVER"
build_kube kubelet "$KUBELET"

etcd_version="$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p' | head -n1)"
apiserver_version="$("$APISERVER" --version 2>/dev/null | awk '{print $2}')"
kubectl_version="$(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p' | head -n1)"
kubelet_version="$("$KUBELET" --version 2>/dev/null | awk '{print $2}')"
containerd_version="$(containerd --version 2>/dev/null | awk '{print $3}')"
echo "kube ok: etcd $(command -v etcd) ${etcd_version:-?}, kube-apiserver $APISERVER ${apiserver_version:-?}, kubelet $KUBELET ${kubelet_version:-?}, containerd ${containerd_version:-?}, kubectl $(command -v kubectl) ${kubectl_version:-?}"
