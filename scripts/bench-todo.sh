#!/usr/bin/env bash
# The TodoList service over HTTP (BENCHMARKS.md): recq dev and the service on
# loopback ports, with the memory read model and then with Redis, each
# measured by examples/todo/loadgen.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/recq ./cmd/recq
go build -o bin/todo-service ./examples/todo/service
go build -o bin/todo-loadgen ./examples/todo/loadgen
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
listening() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
redis-server --port 39579 --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >/dev/null & pids+=($!)
for mode in memory redis; do
	rm -rf "$tmp/data"
	bin/recq dev --data-dir "$tmp/data" --broker-addr 127.0.0.1:39592 --registry-addr 127.0.0.1:39581 >/dev/null 2>&1 & dev=$!
	listening 39581
	extra=()
	[ "$mode" = redis ] && { redis-cli -p 39579 flushall >/dev/null 2>&1 || true; extra=(--redis 127.0.0.1:39579); }
	bin/todo-service --brokers 127.0.0.1:39592 --registry http://127.0.0.1:39581 --http-addr 127.0.0.1:39580 "${extra[@]}" >/dev/null 2>&1 & svc=$!
	listening 39580
	echo "== $mode"
	bin/todo-loadgen --url http://127.0.0.1:39580 "$@"
	kill -TERM "$svc"; wait "$svc" || true
	kill -TERM "$dev"; wait "$dev" || true
done
