#!/usr/bin/env bash
# Builds OpenTofu (a Terraform-compatible CLI, MPL-2.0) from its Go module and caches it under
# $TP_CACHE_DIR/opentofu/<version>/bin/tofu. A cached build is reused as is.
#
#   stack/terraform.sh            # build if needed, print the binary's path
#   stack/terraform.sh path       # print the path only if it is already built (exit 1 otherwise)
#   stack/terraform.sh fmt        # tofu fmt -check -recursive terraform/ (needs no providers)
#   stack/terraform.sh validate   # tofu init -backend=false + validate in terraform/aws and terraform/gcp
#                                 # (needs the provider registry, which this machine cannot reach)
#
# hashicorp/terraform itself is BUSL-licensed and is not used. OpenTofu's go.mod has a replace
# directive (hcl/v2 -> opentofu/hcl/v2), so `go install ...@version` refuses it: the module's source
# is taken from the Go module proxy (`go mod download`), copied, and built with its own go.sum.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

: "${OPENTOFU_VERSION:=v1.12.6}"
TOFU_DIR="$TP_CACHE_DIR/opentofu/$OPENTOFU_VERSION"
TOFU_BIN="$TOFU_DIR/bin/tofu"
# A CLI config file that is named but missing only makes tofu print a warning on every command.
if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -f "$TF_CLI_CONFIG_FILE" ]]; then export TF_CLI_CONFIG_FILE=/dev/null; fi

build() {
  if [[ -x "$TOFU_BIN" ]]; then
    say "tofu $OPENTOFU_VERSION cached in $TOFU_BIN"
    return 0
  fi
  say "tofu: building github.com/opentofu/opentofu/cmd/tofu@$OPENTOFU_VERSION (cold build: a few minutes on 2 cores)"
  local src_dir work
  src_dir=$(go mod download -json "github.com/opentofu/opentofu@$OPENTOFU_VERSION" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error","no Dir")))')
  work="$TOFU_DIR/src"
  rm -rf "$work"; mkdir -p "$work" "$TOFU_DIR/bin"
  cp -R "$src_dir/." "$work/"
  chmod -R u+w "$work"
  cd "$work"
  # version/version.go: dev=no drops the "-dev" suffix, as the release build does.
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
    -o "$TOFU_BIN.tmp" ./cmd/tofu
  mv "$TOFU_BIN.tmp" "$TOFU_BIN"
  cd "$REPO_DIR"
  rm -rf "$work"
  say "tofu: built $("$TOFU_BIN" version | head -1) -> $TOFU_BIN"
}

case "${1:-build}" in
  build)
    build
    echo "$TOFU_BIN"
    ;;
  path)
    [[ -x "$TOFU_BIN" ]] && echo "$TOFU_BIN"
    ;;
  fmt)
    build
    "$TOFU_BIN" fmt -check -recursive -diff "$REPO_DIR/terraform"
    say "tofu fmt -check: terraform/ is formatted"
    ;;
  validate)
    build
    rc=0
    for m in aws gcp; do
      say "tofu: init -backend=false + validate in terraform/$m"
      tmp=$(mktemp -d)
      if TF_DATA_DIR="$tmp" "$TOFU_BIN" -chdir="$REPO_DIR/terraform/$m" init -backend=false -input=false -no-color \
          && TF_DATA_DIR="$tmp" "$TOFU_BIN" -chdir="$REPO_DIR/terraform/$m" validate -no-color; then
        say "terraform/$m: valid"
      else
        rc=1
      fi
      rm -rf "$tmp"
    done
    exit "$rc"
    ;;
  *)
    echo "usage: $0 [build|path|fmt|validate]" >&2
    exit 2
    ;;
esac
