#!/usr/bin/env bash
# The read-side comparison of BENCHMARKS.md: each sub-benchmark in its own
# process (so none runs on a heap another left behind), in alternating
# order, 6 rounds; prints the median events/s of each.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/consumers.test
go test -c -o "$bin" ./consumers/
for _ in 1 2 3 4 5 6; do
	for b in 'raw-franz-go$' 'projector-kafka-offsets$' 'raw-franz-go-decode$' 'projector-redis-exactly-once$' 'projector-kafka-offsets-no-dlq$' 'projector-kafka-offsets-1pct-dead$'; do
		"$bin" -test.run '^$' -test.bench "Consume/$b" -test.benchtime 3x | awk '/^BenchmarkConsume/ {print $1, $5}'
	done
done | sort -k1,1 -k2,2n | awk '
	{ v[$1] = v[$1] " " $2; n[$1]++ }
	END { for (k in v) { split(substr(v[k], 2), a, " "); m = int((n[k] + 1) / 2); printf "%s median %s events/s (runs:%s)\n", k, a[m], v[k] } }'
