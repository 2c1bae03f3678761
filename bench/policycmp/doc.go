// Command policycmp benchmarks the bastion's ReBAC engine (package policy)
// side by side with OpenFGA on the same model, the same tuples and the same
// client concurrency, in one run, and prints the ratio.
//
// The data set is policy.GenerateBenchData(seed): about a million tuples
// over 10k users, 1k groups nested three deep, 100 projects and 10k
// resources. The bastion's engine reads it from the real badger store (what
// the bastion runs), and, for reference, from a plain in-memory map. OpenFGA
// runs as a child process (`openfga run`) on a loopback gRPC port only (no
// HTTP, playground or metrics listener), is loaded over its gRPC API, and
// answers the same Check and ListObjects questions over gRPC.
//
// OpenFGA's datastore is SQLite by default (an embedded on-disk store, like
// the bastion's badger). -openfga-datastore memory selects its memory
// datastore, but that one scans every stored tuple on each write, so
// loading a million tuples would take hours: the load gives up after a
// minute when its projection is far past -load-timeout.
//
// Reported: Check p50, p99 and checks/s with 1 and 16 concurrent callers
// (each phase runs for -duration, cycling through the sample questions),
// and the p50 of ListObjects for a user who reaches about 1k of the 10k
// resources. Every OpenFGA answer is compared with the bastion's; the
// number of disagreements is printed.
//
// With -cond it runs the conditional comparison instead: the data set is
// policy.GenerateCondBenchData(seed) (about 26k tuples, a tenth of the
// grants conditional), every Check is asked with a request context (and
// some with contextual tuples) three times per engine, 90 ListObjects with
// a context, and any answer that differs from the bastion's first one
// (a condition error counts as an answer) fails the run.
//
// Usage:
//
//	go run ./bench/policycmp -openfga ~/.cache/bastion-bench/bin/openfga
//	go run ./bench/policycmp -openfga ~/.cache/bastion-bench/bin/openfga -cond
//
// scripts/bench-policy.sh installs OpenFGA v1.22.1 and runs this.
package main
