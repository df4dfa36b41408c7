#!/bin/sh
# The image's entrypoint: the first argument chooses what runs.
#   identity | chat | delivery | digest | gateway [args]   that service (e.g. `identity rebuild-projections`)
#   digest-worker                                          a digest worker (`digest worker`)
#   migrate                                                identity, chat and digest migrations in turn (digest with DIGEST_DATABASE_URL if set), then exit
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
    node services/identity/dist/main.js migrate
    node services/chat/dist/main.js migrate
    # The digest schema as the digest role when DIGEST_DATABASE_URL is set (docs/deploy.md, "The digest trust domain").
    DATABASE_URL="${DIGEST_DATABASE_URL:-${DATABASE_URL:-}}" node services/digest/dist/main.js migrate
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    exec "$@"
    ;;
esac
