#!/usr/bin/env bash
# Build and push the operator's, the four services' and the analytics job's container images.
#
#   scripts/build-images.sh REGISTRY [TAG]
#
#   REGISTRY  where the images go, without a trailing slash: images are REGISTRY/<name>:TAG, e.g.
#             123456789012.dkr.ecr.us-east-1.amazonaws.com/ticketplatform (the ECR repositories
#             Terraform creates) or ghcr.io/ticketplatform (the CRD's default images)
#   TAG       image tag; default: the project version in pyproject.toml
#
# Names: operator, frontend, user-service, event-catalog, booking-service (as in
# examples/production.yaml and terraform's ecr_repositories), analytics-job (flink/Dockerfile).
# Log in to the registry first (e.g. `aws ecr get-login-password | docker login --username AWS
# --password-stdin <registry host>`).
#
# Environment: CONTAINER_ENGINE=docker|podman (default: docker if present, else podman),
# PLATFORM (default linux/amd64), PUSH=0 to build only, ONLY="operator frontend" for a subset,
# BASE_IMAGE to build on another base than the Dockerfiles' python:3.11.11-slim-bookworm.
# Without a registry or Docker (this project's local machine), use stack/images.sh instead.
set -euo pipefail

usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
REGISTRY=${1%/}
[[ -n "$REGISTRY" && "$REGISTRY" != -* ]] || usage
# registry[:port]/path: lower case, no tag or digest of its own
if [[ ! "$REGISTRY" =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$ ]]; then
  echo "build-images: '$REGISTRY' is not a registry path (e.g. ghcr.io/ticketplatform)" >&2
  exit 2
fi

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=${2:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_DIR/pyproject.toml" | head -n1)}
if [[ ! "$TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "build-images: '$TAG' is not a valid image tag" >&2
  exit 2
fi

ENGINE=${CONTAINER_ENGINE:-}
if [[ -z "$ENGINE" ]]; then
  if command -v docker >/dev/null 2>&1; then ENGINE=docker
  elif command -v podman >/dev/null 2>&1; then ENGINE=podman
  else
    echo "build-images: neither docker nor podman is installed (set CONTAINER_ENGINE)" >&2
    exit 1
  fi
fi
PLATFORM=${PLATFORM:-linux/amd64}
PUSH=${PUSH:-1}

# name -> Dockerfile (relative to the repository root, which is the build context of all of them)
declare -A DOCKERFILES=(
  [operator]=operator/Dockerfile
  [frontend]=services/docker/frontend.Dockerfile
  [user-service]=services/docker/user-service.Dockerfile
  [event-catalog]=services/docker/event-catalog.Dockerfile
  [booking-service]=services/docker/booking-service.Dockerfile
  [analytics-job]=flink/Dockerfile
)
ORDER=(operator frontend user-service event-catalog booking-service analytics-job)
NAMES=(${ONLY:-${ORDER[@]}})
for name in "${NAMES[@]}"; do
  [[ -n "${DOCKERFILES[$name]:-}" ]] || { echo "build-images: unknown image '$name' (one of: ${ORDER[*]})" >&2; exit 2; }
done

# The build context: only what the Dockerfiles COPY (the repository root also holds virtualenvs and
# build caches of several GiB that must not be sent to the engine).
CONTEXT=$(mktemp -d "${TMPDIR:-/tmp}/ticketplatform-images.XXXXXX")
trap 'rm -rf "$CONTEXT"' EXIT
mkdir -p "$CONTEXT/operator" "$CONTEXT/services" "$CONTEXT/flink"
cp "$REPO_DIR/requirements.txt" "$CONTEXT/"
cp -R "$REPO_DIR/operator/ticketplatform_operator" "$REPO_DIR/operator/Dockerfile" "$CONTEXT/operator/"
cp -R "$REPO_DIR/services/." "$CONTEXT/services/"
cp "$REPO_DIR/flink/Dockerfile" "$REPO_DIR/flink/requirements.txt" "$REPO_DIR/flink/analytics_job.py" "$CONTEXT/flink/"
find "$CONTEXT" \( -name __pycache__ -o -name '*.pyc' -o -name '*.egg-info' \) -prune -exec rm -rf {} +

revision=$(git -C "$REPO_DIR" rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

built=()
base_args=()
[[ -z "${BASE_IMAGE:-}" ]] || base_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
for name in "${NAMES[@]}"; do
  image="$REGISTRY/$name:$TAG"
  echo "==> $ENGINE build $image (${DOCKERFILES[$name]})"
  "$ENGINE" build \
    --platform "$PLATFORM" \
    --file "$CONTEXT/${DOCKERFILES[$name]}" \
    --tag "$image" \
    "${base_args[@]}" \
    --label "org.opencontainers.image.title=ticketplatform-$name" \
    --label "org.opencontainers.image.version=$TAG" \
    --label "org.opencontainers.image.revision=$revision" \
    --label "org.opencontainers.image.created=$created" \
    "$CONTEXT"
  built+=("$image")
done

if [[ "$PUSH" != 0 ]]; then
  for image in "${built[@]}"; do
    echo "==> $ENGINE push $image"
    "$ENGINE" push "$image"
  done
fi

echo "images:"
printf '  %s\n' "${built[@]}"
