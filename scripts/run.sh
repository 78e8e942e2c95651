#!/usr/bin/env bash
# make run: recq dev (broker + registry, data under ./.recq) and the TodoList
# service on top of it. Ctrl-C stops both cleanly; data survives restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
BROKER=${RECQ_BROKER_ADDR:-127.0.0.1:9092}
REGISTRY=${RECQ_REGISTRY_ADDR:-127.0.0.1:8081}
HTTP=${TODO_HTTP_ADDR:-127.0.0.1:8080}
mkdir -p .recq
# recq dev in a session of its own: Ctrl-C reaches the service first, and
# the broker stops after it (the service leaves its groups cleanly).
setsid bin/recq dev --data-dir .recq/data --broker-addr "$BROKER" --registry-addr "$REGISTRY" &
dev=$!
svc=
stop() {
	trap - INT TERM EXIT
	[ -n "$svc" ] && kill -TERM "$svc" 2>/dev/null && wait "$svc" 2>/dev/null || true
	kill -TERM "$dev" 2>/dev/null && wait "$dev" 2>/dev/null || true
}
trap stop INT TERM EXIT
# listening HOST:PORT PID: wait until something accepts on HOST:PORT while PID runs.
listening() {
	for _ in $(seq 300); do
		(exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
listening "$REGISTRY" "$dev" || { echo "make run: recq dev did not start (is $BROKER or $REGISTRY in use?)" >&2; exit 1; }
bin/todo-service --brokers "$BROKER" --registry "http://$REGISTRY" --http-addr "$HTTP" --instance make-run &
svc=$!
listening "$HTTP" "$svc" || { echo "make run: the todo service did not start (is $HTTP in use?)" >&2; exit 1; }
cat <<MSG

  The TodoList system is running (data in ./.recq; Ctrl-C stops it).
    page:      http://$HTTP/
    API:       http://$HTTP/lists
    broker:    $BROKER     registry: http://$REGISTRY

  Try:
    curl -s -XPOST $HTTP/lists -d '{"title":"groceries","owner":"ann"}'      # -> {"id":"L..."}
    curl -s -XPOST $HTTP/lists/<id>/items -d '{"text":"milk"}'               # -> {"id":"I..."}
    curl -s -XPOST $HTTP/lists/<id>/items/<item>/check
    curl -s $HTTP/lists/<id>
    curl -sN $HTTP/lists/<id>/events                                          # live changes
    bin/recq topic list

MSG
wait -n "$dev" "$svc" || true
