#!/usr/bin/env bash
# `make demo`: the main job. Until the fleet engine lands it says honestly what it will do.
set -euo pipefail
cd "$(dirname "$0")/.."
cli=build/twinfleet
"$cli" --version
cat <<'TEXT'

twinfleet's demo is not runnable yet. When the fleet engine lands, `make demo` will:
  1. start the embedded local hub (Azure IoT Hub and AWS IoT shadow emulation) on loopback;
  2. ramp up a mixed fleet (light bulbs and Raspberry Pis on the Azure dialect, thermostats
     and MXChip DevKits on the AWS dialect, classic and named shadows);
  3. play the back end: write desired state, invoke methods, read twins back;
  4. show live progress (connected devices, operations/s, latency percentiles, convergence);
  5. write a report (summary.json, junit.xml, report.html) and print a summary.

What works today: the local hub (Azure IoT Hub twins and AWS IoT shadows over MQTT/TLS, both
REST service APIs), the twin/shadow document model, SAS and SigV4, a development CA. Try:
TEXT
echo "  $cli hub                      # then read twinfleet-hub/hub.json; Ctrl-C stops it"
echo "  $cli certs /tmp/twinfleet-certs --client thing-0001"
echo "  $cli sas --resource myhub.azure-devices.net/devices/dev1 --key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
