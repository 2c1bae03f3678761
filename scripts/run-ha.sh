#!/usr/bin/env bash
# `make run-ha`: three etcd members and three bastion replicas on loopback
# (ssh ports 2222, 2223, 2224), sharing one store. Ctrl-C stops them all.
# Your ~/.ssh/*.pub become a dev admin, as with `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v etcd >/dev/null || bash scripts/install-kube.sh
dir=.dev/ha
mkdir -p "$dir"
user=${DEV_USER:-$(id -un)}
keys=$(ls "$HOME"/.ssh/*.pub 2>/dev/null | grep -v -- '-cert.pub$' || true)
extra=""
if [ -z "$keys" ]; then
  [ -f .dev/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -C "$user@bastion-dev" -f .dev/id_ed25519
  keys=.dev/id_ed25519.pub; extra=" -i .dev/id_ed25519"
fi
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

cluster="m1=http://127.0.0.1:23801,m2=http://127.0.0.1:23802,m3=http://127.0.0.1:23803"
endpoints=""
for i in 1 2 3; do
  etcd --name "m$i" --data-dir "$dir/etcd-m$i" \
    --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
    --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
    --initial-cluster "$cluster" --initial-cluster-state new --logger zap --log-level warn \
    >"$dir/etcd-m$i.log" 2>&1 &
  pids+=($!)
  endpoints="$endpoints${endpoints:+,}127.0.0.1:2379$i"
done
make -s build
args=""; for k in $keys; do args="$args --admin-key $k"; done
for i in 0 1 2; do
  port=$((2222 + i))
  admin=""
  [ "$i" = 0 ] && admin="--admin $user $args"
  BASTION_STORE="etcd://$endpoints" ./bin/bastion serve --config examples/dev/config.yaml \
    --listen ":$port" --metrics-listen "127.0.0.1:$((9222 + i))" --host "ssh -p $port localhost" \
    --data "$dir/replica-$i" $admin >"$dir/replica-$i.log" 2>&1 &
  pids+=($!)
  # The first replica creates the host key, CA and admin; the others join.
  [ "$i" = 0 ] && sleep 3
done
sleep 2
echo ""
echo "  3 etcd members (127.0.0.1:23791-23793) and 3 replicas are up. Connect to any:"
for p in 2222 2223 2224; do echo "      ssh -p $p$extra localhost whoami"; done
echo "  Logs in $dir/*.log. Stop with Ctrl-C."
wait
