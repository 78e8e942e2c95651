#!/usr/bin/env bash
# Installs the programs recq's tests run against, from Debian, when they are
# missing: kcat (a librdkafka client, for interop tests) and redis-server.
# Without root it says exactly what to install instead.
set -euo pipefail
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
