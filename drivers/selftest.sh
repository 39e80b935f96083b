#!/bin/bash
# The shipped drivers' hand test, without the Go harness: starts the three
# fake services (payment and inventory over TLS with one CA, notification
# over plain HTTP), then runs drivers/python/handtest.py against each driver:
# the protocol (init_ok, answers once each, digests, headers, concurrency,
# error classes, close, shutdown, EOF) and the behaviour each configuration
# promises under faults (retries, duplicate charges, Retry-After, slow and cut
# bodies, pool bounds). Every wait is bounded; every process it starts is
# stopped on exit, by its pid.
#
# usage: drivers/selftest.sh [DRIVER...]   (default: every shipped driver)
#   DRIVER is one of requests_typical requests_corrected httpx_client
#   axios_typical axios_corrected.
# env:   POOLPROOF_BIN  a built poolproof binary (default: go build ./cmd/poolproof)
#        KEEP=1         keep the work directory (drivers' stderr) for a look
# exit:  0 when every driver passed, 1 when one failed, 2 on a setup error.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/poolproof-selftest.XXXXXX")
pids=()

cleanup() {
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "${KEEP:-}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

bin=${POOLPROOF_BIN:-}
if [ -z "$bin" ]; then
	bin=$work/poolproof
	if ! (cd "$repo" && timeout 300 go build -o "$bin" ./cmd/poolproof); then
		echo "selftest: go build ./cmd/poolproof failed; set POOLPROOF_BIN to a built poolproof" >&2
		exit 2
	fi
fi

# start NAME ARGS...: runs a fake service, waits (10 s at most) for its
# url= and admin_url= lines and sets NAME_url and NAME_admin.
start() {
	local name=$1; shift
	"$bin" fakeserver -service "$name" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	pids+=($!)
	for _ in $(seq 100); do
		if grep -q '^admin_url=' "$work/$name.out" 2>/dev/null; then
			printf -v "${name}_url" '%s' "$(sed -n 's/^url=//p' "$work/$name.out")"
			printf -v "${name}_admin" '%s' "$(sed -n 's/^admin_url=//p' "$work/$name.out")"
			return 0
		fi
		sleep 0.1
	done
	echo "selftest: fake $name did not start:" >&2
	cat "$work/$name.err" >&2
	exit 2
}

start inventory -tls on -ca-out "$work/ca.pem" -ca-key-out "$work/ca.key"
start payment -tls on -ca-cert "$work/ca.pem" -ca-key "$work/ca.key"
start notification -tls off
echo "fake services: inventory $inventory_url, payment $payment_url, notification $notification_url"

declare -A cmds=(
	[requests_typical]="/usr/bin/python3 $repo/drivers/python/requests_typical.py"
	[requests_corrected]="/usr/bin/python3 $repo/drivers/python/requests_corrected.py"
	[httpx_client]="/usr/bin/python3 $repo/drivers/python/httpx_client.py"
	[axios_typical]="/usr/bin/node $repo/drivers/node/axios_typical.js"
	[axios_corrected]="/usr/bin/node $repo/drivers/node/axios_corrected.js"
)
order=(requests_typical requests_corrected httpx_client axios_typical axios_corrected)
[ $# -gt 0 ] && order=("$@")

failed=()
for d in "${order[@]}"; do
	if [ -z "${cmds[$d]:-}" ]; then
		echo "selftest: unknown driver $d; choose among ${!cmds[*]}" >&2
		exit 2
	fi
	echo
	echo "== $d: ${cmds[$d]}"
	# shellcheck disable=SC2086 # the command is words on purpose
	timeout -k 5 180 /usr/bin/python3 "$repo/drivers/python/handtest.py" \
		--inventory "$inventory_url,$inventory_admin" --payment "$payment_url,$payment_admin" \
		--notification "$notification_url,$notification_admin" --ca "$work/ca.pem" \
		--stderr "$work/$d.stderr" -- ${cmds[$d]}
	rc=$?
	[ $rc -eq 0 ] || failed+=("$d (exit $rc)")
done

echo
if [ ${#failed[@]} -gt 0 ]; then
	echo "selftest: FAILED: ${failed[*]}"
	exit 1
fi
echo "selftest: every driver passed"
