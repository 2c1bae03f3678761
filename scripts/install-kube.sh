#!/usr/bin/env bash
# Installs, idempotently, the Kubernetes peers of the end-to-end tests:
#   - etcd, from Debian's etcd-server, when `etcd` is missing;
#   - kube-apiserver v1.34.4, built from the k8s.io/kubernetes Go module into
#     a cache outside the repo (about 10 minutes cold on 2 cores; nothing is
#     done when the binary is already there);
#   - kubectl, which must already be on the machine.
# The apiserver lands in ${BASTION_CACHE:-$HOME/.cache/bastion}/kube/v1.34.4/,
# where e2e/harness/kube.go looks for it.
set -euo pipefail

KUBE_VERSION=v1.34.4
# The staging modules (k8s.io/api, ...) are published as v0.MINOR.PATCH.
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
CACHE="${BASTION_CACHE:-$HOME/.cache/bastion}"
KUBE_DIR="$CACHE/kube/$KUBE_VERSION"
APISERVER="$KUBE_DIR/kube-apiserver"

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

# etcd.
if ! command -v etcd >/dev/null 2>&1; then
  echo "installing: etcd-server"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >/dev/null
fi

# kubectl: not installed here, only checked.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubectl is missing: install kubectl (a client within one minor version of $KUBE_VERSION) and run this again" >&2
  exit 1
fi

# kube-apiserver.
if [ ! -x "$APISERVER" ]; then
  echo "building kube-apiserver $KUBE_VERSION into $APISERVER (about 10 minutes cold on 2 cores)"
  mkdir -p "$KUBE_DIR"
  build="$(mktemp -d "$CACHE/kube/build.XXXXXX")"
  trap 'rm -rf "$build"' EXIT
  export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0
  # k8s.io/kubernetes replaces its staging modules with ./staging/src/...;
  # a module that requires it must map each of them to its published version.
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
  pkg=k8s.io/component-base/version
  cpkg=k8s.io/client-go/pkg/version
  minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  ldflags="-s -w"
  for p in $pkg $cpkg; do
    ldflags="$ldflags -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags="$ldflags -X $p.gitTreeState=clean -X $p.buildDate=$now"
  done
  start=$(date +%s)
  (cd "$build" && go build -trimpath -ldflags "$ldflags" -o "$build/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$build/kube-apiserver" "$APISERVER.tmp"
  mv "$APISERVER.tmp" "$APISERVER"
  echo "built kube-apiserver $KUBE_VERSION in $(($(date +%s) - start))s"
fi

etcd_version="$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p' | head -n1)"
apiserver_version="$("$APISERVER" --version 2>/dev/null | awk '{print $2}')"
kubectl_version="$(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p' | head -n1)"
echo "kube ok: etcd $(command -v etcd) ${etcd_version:-?}, kube-apiserver $APISERVER ${apiserver_version:-?}, kubectl $(command -v kubectl) ${kubectl_version:-?}"
