# The runtime of a `twinfleet hub` for compose.yaml: Debian 12 with the shared libraries the
# twinfleet binary links (built on the host by the project's build, Debian 12 as well). The
# binary itself is mounted, not copied, so a rebuild needs no image rebuild.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libfmt9 libssl3 libyaml-cpp0.7 libboost-json1.81.0 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/local/bin/twinfleet"]
