#!/bin/sh
# The entrypoint of every vidmesh service image: the same file runs in Docker, in Kubernetes and,
# outside any container, in CI (tests/deploy/test_entrypoints.py), so all three run the same commands.
#
#   serve (default)  migrate the service's database, then replace this shell with the service, so
#                    SIGTERM from Docker or the kubelet reaches Python directly and it drains.
#                    VIDMESH_SKIP_MIGRATE=1 skips the migration (Kubernetes migrates in an init
#                    container, so replicas starting together do not race each other).
#   migrate          migrate only, then exit (the init container's command).
#   health           exit 0 when the running service answers its health check.
#   anything else    run as given (a shell for debugging: `docker run -it IMAGE sh`).
#
# VIDMESH_SERVICE_MODULE names the package (vidmesh_user ...); each Dockerfile sets it.
set -eu

module="${VIDMESH_SERVICE_MODULE:?set VIDMESH_SERVICE_MODULE to the service package, e.g. vidmesh_user}"

if [ "$#" -eq 0 ]; then
    set -- serve
fi

case "$1" in
    serve)
        if [ "${VIDMESH_SKIP_MIGRATE:-0}" != "1" ]; then
            python -m "$module" migrate
        fi
        exec python -m "$module" serve
        ;;
    migrate | health)
        exec python -m "$module" "$1"
        ;;
    *)
        exec "$@"
        ;;
esac
