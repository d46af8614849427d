#!/usr/bin/env bash
# `make demo`: the main job — the quickstart scenario: a mixed fleet of the four shipped
# profiles (light bulbs and Raspberry Pis on the Azure dialect; light bulbs, thermostats with a
# classic and a named shadow, and MXChip DevKits on the AWS dialect) against the hub embedded in
# the twinfleet process, with a live progress line and a summary at the end (Ctrl-C ends it
# early and still prints the summary). DEMO_DURATION=30s shortens it.
set -euo pipefail
cd "$(dirname "$0")/.."
cli=build/twinfleet
"$cli" --version
args=(run scenarios/quickstart.yaml)
if [[ -n "${DEMO_DURATION:-}" ]]; then args+=(--duration "$DEMO_DURATION"); fi
exec "$cli" "${args[@]}"
