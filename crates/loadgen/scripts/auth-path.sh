#!/usr/bin/env bash
# The REST read path with each kind of credential: wrk GETs one ticket with an API key and with a
# customer's JWT, against `helpdesk serve` on SQLite (loopback, bounded in time). Any release of
# the binary works, so two releases compare in one run:
#
#   crates/loadgen/scripts/auth-path.sh target/release/helpdesk [seconds] [connections]
#
# Releases with per-tenant signing keys get one from `admin create-signing-key`; older ones sign
# with the process-wide HS256 secret they were configured with.
set -euo pipefail
bin=${1:?usage: auth-path.sh <helpdesk binary> [seconds] [connections]}
seconds=${2:-10}
connections=${3:-64}
command -v wrk >/dev/null || { echo "wrk is needed (Debian package wrk)"; exit 1; }

work=$(mktemp -d)
key=hdk_authbench_0123456789abcdefghijABCDEFGHIJ0123
export HELPDESK_DATA_DIR="$work" HELPDESK_GRPC_ADDR=127.0.0.1:0 HELPDESK_HTTP_ADDR=127.0.0.1:0 \
  HELPDESK_BOOTSTRAP_API_KEY=$key HELPDESK_TELEMETRY__LOG_FORMAT=json HELPDESK_TELEMETRY__LOG_FILTER=info \
  HELPDESK_GATEWAY__RATE_LIMIT_PER_SECOND=10000000 HELPDESK_GATEWAY__RATE_LIMIT_BURST=10000000
legacy_secret=legacy-hs256-secret-for-the-benchmark-0123456789
if ! "$bin" admin --help | grep -q create-signing-key; then
  export HELPDESK_AUTH__JWT_HS256_SECRET=$legacy_secret
fi
"$bin" serve >"$work/stdout" 2>"$work/log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
http=
for _ in $(seq 1 60); do
  http=$(grep -o '"http_addr":"[^"]*"' "$work/log" | head -1 | cut -d'"' -f4 || true)
  [ -n "$http" ] && break
  sleep 0.5
done
[ -n "$http" ] || { cat "$work/log"; exit 1; }
base="http://$http"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
customer=$(curl -sf -H "Authorization: Bearer $key" -H 'content-type: application/json' \
  -d '{"name":"Bench","emails":["bench@example.com"]}' "$base/v1/customers" | json '["id"]')
ticket=$(curl -sf -H "Authorization: Bearer $key" -H 'content-type: application/json' \
  -d "{\"subject\":\"auth path\",\"requester_id\":\"$customer\"}" "$base/v1/tickets" | json '["id"]')
if [ -z "${HELPDESK_AUTH__JWT_HS256_SECRET:-}" ]; then
  "$bin" admin create-signing-key --tenant demo --name bench >/dev/null
fi
jwt=$("$bin" admin issue-token --tenant demo --subject "$customer" --ttl-minutes 30)
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $jwt" "$base/v1/tickets/$ticket")" = 200 ]

for credential in api_key jwt; do
  token=$key
  [ $credential = jwt ] && token=$jwt
  result=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$base/v1/tickets/$ticket")
  rps=$(echo "$result" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$result" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$result" | awk '$1 == "99%" {print $2}')
  errors=$(echo "$result" | awk '/Non-2xx/ {print $NF}')
  echo "$credential: ${rps} req/s, p50 ${p50}, p99 ${p99}, non-2xx ${errors:-0}"
done
