#!/usr/bin/env bash
# Sends one signed partner or provider request (README, "Partner calls") with curl and openssl.
#   KEY_ID=pt_… SECRET=… scripts/signed-curl.sh METHOD PATH_WITH_QUERY [JSON_BODY]
# TANHUI_URL defaults to http://127.0.0.1:8080. Extra curl arguments can follow the body.
set -euo pipefail
method=${1:?method}; path=${2:?path}; body=${3:-}
shift $(( $# < 3 ? $# : 3 ))
: "${KEY_ID:?set KEY_ID}" "${SECRET:?set SECRET}"
ts=$(date +%s)
nonce=$(openssl rand -hex 16)
body_hash=$(printf '%s' "$body" | openssl dgst -sha256 -hex | sed 's/^.* //')
signature=$(printf '%s\n%s\n%s\n%s\n%s' "$method" "$path" "$ts" "$nonce" "$body_hash" \
  | openssl dgst -sha256 -hmac "$SECRET" -hex | sed 's/^.* //')
args=(-sS -X "$method" "${TANHUI_URL:-http://127.0.0.1:8080}$path"
  -H "X-Key-Id: $KEY_ID" -H "X-Timestamp: $ts" -H "X-Nonce: $nonce" -H "X-Signature: $signature")
if [ -n "$body" ]; then
  args+=(-H 'content-type: application/json' --data-raw "$body")
fi
curl "${args[@]}" "$@"
echo
