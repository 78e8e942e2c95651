#!/usr/bin/env bash
# Installs the programs recq's tests run against, from Debian, when they are
# missing: kcat (a librdkafka client, for interop tests) and redis-server.
# Without root it says exactly what to install instead.
# Where Node.js and npm are installed it also installs kafkajs (one package,
# no dependencies) for the kafkajs interop test, into $RECQ_NODE_DIR
# (default ~/.cache/recq/node); without npm that test is skipped.
set -euo pipefail

kafkajs=2.2.4 # integration/foreign_kafkajs_test.go's kafkajsVersion
node_dir="${RECQ_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/recq/node}"
if command -v npm >/dev/null 2>&1 &&
	! grep -qs "\"version\": \"$kafkajs\"" "$node_dir/node_modules/kafkajs/package.json"; then
	echo "installing kafkajs@$kafkajs into $node_dir"
	mkdir -p "$node_dir"
	npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error "kafkajs@$kafkajs" >/dev/null ||
		echo "could not install kafkajs; the kafkajs interop test will be skipped" >&2
fi

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing ${missing[*]} from Debian"
	apt-get install -y -q "${missing[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
	exit 0
fi
echo "missing: ${missing[*]}. Install with: sudo apt-get install ${missing[*]}" >&2
exit 1
