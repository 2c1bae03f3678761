#!/usr/bin/env bash
# Policy benchmark: the bastion's ReBAC engine over its badger store vs
# OpenFGA v1.22.1, same model, same 1M tuples, same client concurrency, in
# one run (bench/policycmp). Installs OpenFGA once into a cache directory
# outside the repository. Extra arguments go to policycmp, e.g.
#   scripts/bench-policy.sh -duration 5s -openfga-datastore sqlite
#   scripts/bench-policy.sh -cond    # conditional data (BENCH_ONLY=policycond)
# Environment: BENCH_CACHE (default ~/.cache/bastion-bench), POLICY_BENCH_OUT
# (also write the table there).
set -euo pipefail
cd "$(dirname "$0")/.."

OPENFGA_VERSION=v1.22.1
cache=${BENCH_CACHE:-$HOME/.cache/bastion-bench}
bindir=$cache/bin
openfga=$bindir/openfga

# The module version recorded in the binary says whether it is the right one.
installed() { go version -m "$openfga" 2>/dev/null | awk '$1=="mod" && $2=="github.com/openfga/openfga" { print $3 }'; }

if [ ! -x "$openfga" ] || [ "$(installed)" != "$OPENFGA_VERSION" ]; then
  echo "== installing openfga $OPENFGA_VERSION into $bindir (first run only; several minutes on 2 cores)"
  mkdir -p "$bindir"
  GOBIN=$bindir go install "github.com/openfga/openfga/cmd/openfga@$OPENFGA_VERSION"
fi

args=(-openfga "$openfga")
if [ -n "${POLICY_BENCH_OUT:-}" ]; then
  args+=(-out "$POLICY_BENCH_OUT")
fi
if [[ " $* " == *" -cond "* ]]; then
  echo "== policycond: bastion engine vs OpenFGA $OPENFGA_VERSION on conditional data (~26k tuples, 10% conditional; 3000 checks with request contexts x 3 passes; 90 lists); fails on any disagreement"
else
  echo "== policy: bastion engine vs OpenFGA $OPENFGA_VERSION (1M tuples; Check at 1 and 16 callers; ListObjects)"
fi
go run ./bench/policycmp "${args[@]}" "$@"
