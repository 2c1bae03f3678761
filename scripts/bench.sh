#!/usr/bin/env bash
# `make bench`: each benchmark runs side by side with its peer in one run,
# and the ratio is printed. Raw `go test -bench` output goes to bench.out.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench.out}
: > "$out"

# metric NAME UNIT: the value of UNIT on the line of benchmark NAME.
metric() { awk -v n="$1" -v u="$2" '$1 ~ "^"n"(-[0-9]+)?$" { for (i=2;i<NF;i++) if ($(i+1)==u) v=$i } END { print v }' "$out"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b>0) printf "%.2f", a/b; else print "n/a" }'; }

echo "== P5: durable hash-chained audit appends vs raw badger group commit; verify 1M"
go test -run '^$' -bench 'BenchmarkAuditAppend|BenchmarkRawBadgerGroupCommit' -benchtime 3s ./audit/ | tee -a "$out"
go test -run '^$' -bench 'BenchmarkVerify1M' -benchtime 1x -timeout 30m ./audit/ | tee -a "$out"

echo "== P2: connections/s (handshake + publickey + exec) vs OpenSSH sshd"
go test -run '^$' -bench 'BenchmarkConnections' -benchtime 1x -timeout 30m ./e2e/ | tee -a "$out"

ours=$(metric BenchmarkAuditAppend events/s); peer=$(metric BenchmarkRawBadgerGroupCommit events/s)
echo
echo "| benchmark | bastion | peer | ratio | goal |"
echo "|---|---|---|---|---|"
echo "| P5 audit appends/s | $ours | raw badger $peer | $(ratio "$ours" "$peer") | >= 20000/s |"
echo "| P5 verify 1M events | $(metric BenchmarkVerify1M s/verify) s | - | - | <= 5 s |"
c1=$(metric BenchmarkConnections bastion_conns/s); c2=$(metric BenchmarkConnections sshd_conns/s)
echo "| P2 connections/s | $c1 | sshd $c2 | $(ratio "$c1" "$c2") | >= 2x sshd |"
