#!/usr/bin/env sh
# POST one event to the Beacon ingest API. Usage:
#   BEACON_API_KEY=bk_... ./examples/post_event.sh [event.json] [http://127.0.0.1:8080]
# 202 = Kafka holds it. Anything else is an application/problem+json body saying why;
# on 429/503 wait Retry-After seconds and resend the same file (same id: no duplicate).
set -eu
curl -sS -i -X POST "${2:-http://127.0.0.1:8080}/v1/events" \
  -H "Authorization: Bearer ${BEACON_API_KEY:?set BEACON_API_KEY}" \
  -H "Content-Type: application/cloudevents+json" \
  --data-binary @"${1:-$(dirname "$0")/reported.json}"
