#!/usr/bin/env bash
# `make bench`: each benchmark runs side by side with its peer in one run,
# and the ratio is printed. Raw `go test -bench` output goes to bench.out.
# BENCH_ONLY=p1,p2,p3e,p5,p6,p7,p8,p9,p10,p11,policy,policycond runs a subset (the
# default is all of them). BASTION_P8_SECONDS, BASTION_P8_WRITERS, BASTION_P8_ROUNDS and
# BASTION_P9_TRIALS tune P8 and P9 (10 s per side, 64 appenders per replica, in 1 turn
# each; 200 trials).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench.out}
only=${BENCH_ONLY:-p1,p2,p3e,p5,p6,p7,p8,p9,p10,p11,policy,policycond}
: > "$out"
want() { [[ ",$only," == *",$1,"* ]]; }

# metric NAME UNIT: the value of UNIT on the line of benchmark NAME.
metric() { awk -v n="$1" -v u="$2" '$1 ~ "^"n"(-[0-9]+)?$" { for (i=2;i<NF;i++) if ($(i+1)==u) v=$i } END { print v }' "$out"; }
int() { awk -v v="$1" 'BEGIN { if (v == "") print ""; else printf "%.0f", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b>0) printf "%.2f", a/b; else print "n/a" }'; }

if want p5; then
  echo "== P5: durable hash-chained audit appends vs raw badger group commit; verify 1M"
  go test -run '^$' -bench 'BenchmarkAuditAppend|BenchmarkRawBadgerGroupCommit' -benchtime 3s ./audit/ | tee -a "$out"
  go test -run '^$' -bench 'BenchmarkVerify1M' -benchtime 1x -timeout 30m ./audit/ | tee -a "$out"
fi
if want p2; then
  echo "== P2: connections/s vs OpenSSH sshd (whoami vs true; audited -W open/close vs sshd -W)"
  go test -run '^$' -bench 'BenchmarkConnections' -benchtime 1x -timeout 30m ./e2e/ | tee -a "$out"
fi
if want p1; then
  echo "== P1: 1 GiB through ssh -L (aes128-gcm), bastion vs sshd, same client and sink"
  go test -run '^$' -bench 'BenchmarkThroughput' -benchtime 3x -timeout 30m ./e2e/ | tee -a "$out"
fi
if want p6; then
  echo "== P6: kube-API GET latency through ssh -L and the bastion's kube proxy vs direct to the apiserver, same client-go code"
  go test -run '^$' -bench 'BenchmarkKubeProxyLatency' -benchtime 1x -timeout 30m ./e2e/ | tee -a "$out"
fi
if want p7; then
  echo "== P7: memory per idle session, 5000 authenticated connections with one idle session channel each, bastion vs sshd (PSS; sshd: listener + all its processes)"
  go test -run '^$' -bench 'BenchmarkIdleSessionMemory' -benchtime 1x -timeout 30m ./e2e/ | tee -a "$out"
fi
if want p8; then
  echo "== P8: durable audit appends/s, 3 replicas (3 Logs on 3 etcd clients, one per member) on a 3-member etcd vs one Log on badger"
  go test -run '^$' -bench 'BenchmarkAuditReplicasEtcd' -benchtime 1x -timeout 30m ./audit/ | tee -a "$out"
fi
if want p9; then
  echo "== P9: revocation propagation: sessions kill / tuples rm on replica A until the ssh -L connection held on replica B closes (${BASTION_P9_TRIALS:-200} trials)"
  go test -run '^$' -bench 'BenchmarkRevocationPropagation' -benchtime 1x -timeout 30m ./e2e/ | tee -a "$out"
fi
if want p11; then
  echo "== P11: login latency of the real ssh client while idle sockets hold every pre-auth slot (max_startups 200)"
  go test -run '^$' -bench 'BenchmarkLoginUnderFlood' -benchtime 1x -timeout 30m ./e2e/ | tee -a "$out"
fi
if want p3e; then
  echo "== P3 on etcd: policy Check over the tuple cache following the feed, store on etcd vs on badger (1M tuples; 1 and 16 callers)"
  go test -run '^$' -bench 'BenchmarkCheckEtcd' -benchtime 1x -timeout 30m ./policy/ | tee -a "$out"
fi
if want p10; then
  echo "== P10: connections/s with audited -W open/close spread over 3 replicas on one etcd vs all on 1 replica"
  go test -run '^$' -bench 'BenchmarkConnectionsHA' -benchtime 1x -timeout 30m ./e2e/ | tee -a "$out"
fi

echo
echo "| benchmark | bastion | peer | ratio | goal |"
echo "|---|---|---|---|---|"
if want p1; then
  a=$(metric BenchmarkThroughput bastion_MiB/s); b=$(metric BenchmarkThroughput sshd_MiB/s)
  echo "| P1 ssh -L throughput MiB/s | $a | sshd $b | $(ratio "$a" "$b") | >= 1.2x sshd |"
fi
if want p2; then
  a=$(metric BenchmarkConnections bastion_conns/s); b=$(metric BenchmarkConnections sshd_conns/s)
  echo "| P2 connections/s (auth + whoami) | $a | sshd $b | $(ratio "$a" "$b") | >= 2x sshd |"
  a=$(metric BenchmarkConnectionsForward bastion_conns/s); b=$(metric BenchmarkConnectionsForward sshd_conns/s)
  echo "| P2 connections/s (auth + check + audited -W) | $a | sshd $b | $(ratio "$a" "$b") | >= 2x sshd |"
fi
if want p5; then
  a=$(metric BenchmarkAuditAppend events/s); b=$(metric BenchmarkRawBadgerGroupCommit events/s)
  echo "| P5 audit appends/s (durable, chained) | $a | raw badger $b | $(ratio "$a" "$b") | >= 20000/s |"
  echo "| P5 verify 1M events | $(metric BenchmarkVerify1M s/verify) s | - | - | <= 5 s |"
fi
if want p6; then
  m() { metric BenchmarkKubeProxyLatency "$1"; }
  echo "| P6 kube GET latency ms, p50 / p99 | $(m bastion_p50_ms) / $(m bastion_p99_ms) | direct $(m direct_p50_ms) / $(m direct_p99_ms) | +$(m added_p50_ms) / +$(m added_p99_ms) ms | <= 1 ms added p50, <= 3 ms p99 |"
fi
if want p7; then
  m() { metric BenchmarkIdleSessionMemory "$1"; }
  a=$(m bastion_KiB/session); c=$(m bastion_churn_KiB/session); b=$(m sshd_KiB/session)
  echo "| P7 KiB per idle session, PSS ($(m bastion_sessions) / $(m sshd_sessions) sessions) | $a | sshd $b | $(ratio "$a" "$b") | lower than sshd |"
  echo "| P7 same, bastion after its first $(m bastion_sessions) closed and as many reopened | $c | sshd $b | $(ratio "$c" "$b") | lower than sshd |"
  echo "| P7 KiB per idle session, RSS (sshd: summed over its processes) | $(m bastion_rss_KiB/session) (reopened $(m bastion_churn_rss_KiB/session)) | sshd $(m sshd_rss_KiB/session) | $(ratio "$(m bastion_rss_KiB/session)" "$(m sshd_rss_KiB/session)") | - |"
fi
if want p8; then
  m() { metric BenchmarkAuditReplicasEtcd "$1"; }
  a=$(m etcd3_events/s); b=$(m badger_events/s)
  echo "| P8 audit appends/s, 3 replicas on 3-member etcd (Append p99 ms; appends refused) | $a ($(m etcd3_p99_ms) ms; $(int "$(m etcd3_refused)") refused) | badger $b ($(m badger_p99_ms) ms; $(int "$(m badger_refused)") refused) | $(ratio "$a" "$b") | >= 10000/s and >= 0.25x badger |"
fi
if want p9; then
  m() { metric BenchmarkRevocationPropagation "$1"; }
  echo "| P9 revocation on A to close on B, ms p50 / p99 from A's command.run ($(int "$(m trials)") trials: kill; tuple rm) | $(m p50_ms) / $(m p99_ms) ($(m kill_p50_ms) / $(m kill_p99_ms); $(m rm_p50_ms) / $(m rm_p99_ms)) | from the ssh command's start $(m cmd_p50_ms) / $(m cmd_p99_ms) | - | p50 <= 100 ms, p99 <= 1000 ms |"
fi
if want p11; then
  m() { metric BenchmarkLoginUnderFlood "$1"; }
  echo "| P11 ssh login ms under an idle flood, p50 / max (10 sources x 20; 260 x 1) | $(m flood10x20_p50_ms) / $(m flood10x20_max_ms); $(m flood260x1_p50_ms) / $(m flood260x1_max_ms) | no flood $(m baseline_p50_ms) | - | <= 5000 ms |"
fi
if want p3e; then
  m() { metric BenchmarkCheckEtcd "$1"; }
  echo "| P3 on etcd: Check ms p50 / p99, 1 caller; 16 callers (checks/s) | $(m etcd1_p50_ms) / $(m etcd1_p99_ms); $(m etcd16_p50_ms) / $(m etcd16_p99_ms) ($(int "$(m etcd16_checks/s)")/s) | badger $(m badger1_p50_ms) / $(m badger1_p99_ms); $(m badger16_p50_ms) / $(m badger16_p99_ms) ($(int "$(m badger16_checks/s)")/s) | $(ratio "$(m etcd1_p99_ms)" "$(m badger1_p99_ms)"); $(ratio "$(m etcd16_p99_ms)" "$(m badger16_p99_ms)") (p99) | p99 <= 1 ms, unchanged from badger |"
  echo "| P3 on etcd, cache MaxAge 1 h (held): Check ms p50 / p99, 1 caller; 16 callers (checks/s) | $(m etcdheld1_p50_ms) / $(m etcdheld1_p99_ms); $(m etcdheld16_p50_ms) / $(m etcdheld16_p99_ms) ($(int "$(m etcdheld16_checks/s)")/s) | badger $(m badgerheld1_p50_ms) / $(m badgerheld1_p99_ms); $(m badgerheld16_p50_ms) / $(m badgerheld16_p99_ms) ($(int "$(m badgerheld16_checks/s)")/s) | $(ratio "$(m etcdheld1_p99_ms)" "$(m badgerheld1_p99_ms)"); $(ratio "$(m etcdheld16_p99_ms)" "$(m badgerheld16_p99_ms)") (p99) | - |"
fi
if want p10; then
  m() { metric BenchmarkConnectionsHA "$1"; }
  echo "| P10 connections/s (auth + check + audited -W), 3 replicas vs 1 (machine CPU busy) | $(int "$(m r3_conns/s)") ($(int "$(m r3_machine_busy_%)")%) | 1 replica $(int "$(m r1_conns/s)") ($(int "$(m r1_machine_busy_%)")%) | $(ratio "$(m r3_conns/s)" "$(m r1_conns/s)") | >= 2.5x (with the cores for it) |"
fi
if want policy; then
  echo
  bash scripts/bench-policy.sh
fi
if want policycond; then
  echo
  bash scripts/bench-policy.sh -cond
fi
