#!/bin/sh
# The image's entrypoint: the first argument chooses what runs.
#   identity | chat | delivery | digest | gateway [args]   that service (e.g. `identity rebuild-projections`)
#   digest-worker                                          a digest worker (`digest worker`)
#   migrate                                                identity, chat and digest migrations in turn, then exit
#   help                                                   this text
#   anything else                                          run as a command (`node -e …`, `sh`)
# Each service runs as PID 1 (exec), so SIGTERM reaches it and it shuts down
# cleanly. Configuration comes from the environment only (docs/configuration.md).
set -eu
cd /app

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

what="${1:-help}"
case "$what" in
  identity | chat | delivery | digest | gateway)
    shift
    exec node "services/$what/dist/main.js" "$@"
    ;;
  digest-worker)
    shift
    exec node services/digest/dist/main.js worker "$@"
    ;;
  migrate)
    for service in identity chat digest; do
      node "services/$service/dist/main.js" migrate
    done
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    exec "$@"
    ;;
esac
