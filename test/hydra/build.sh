#!/usr/bin/env bash
# Builds Ory Hydra (version pinned in go.mod/go.sum of this tools module) once
# and caches the binary under the user cache dir, keyed by sha256(go.sum).
#
# stdout: the absolute path of the hydra binary (and nothing else)
# stderr: logs
#
# Needs only Go, gcc (cgo for the sqlite in-memory DSN) and the Go module proxy.
# Env:
#   HYDRA_CACHE_DIR  override the cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/wizard-oauth-refresh)
#   HYDRA_REBUILD=1  force a rebuild even if the cached binary exists
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf 'hydra/build.sh: %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "go not found in PATH"; exit 1; }

if command -v sha256sum >/dev/null 2>&1; then
  sum="$(sha256sum "$here/go.sum" | cut -d' ' -f1)"
else
  sum="$(shasum -a 256 "$here/go.sum" | cut -d' ' -f1)"
fi

cache_root="${HYDRA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wizard-oauth-refresh}"
dir="$cache_root/hydra-$sum"
bin="$dir/hydra"

if [[ -x "$bin" && "${HYDRA_REBUILD:-0}" != "1" ]]; then
  log "using cached $bin"
  printf '%s\n' "$bin"
  exit 0
fi

mkdir -p "$dir"

# Serialise concurrent builds (e.g. parallel test packages) when flock exists.
if command -v flock >/dev/null 2>&1 && [[ -z "${HYDRA_BUILD_LOCKED:-}" ]]; then
  exec 9>"$dir/.lock"
  flock 9
  export HYDRA_BUILD_LOCKED=1
  if [[ -x "$bin" && "${HYDRA_REBUILD:-0}" != "1" ]]; then
    log "built concurrently: $bin"
    printf '%s\n' "$bin"
    exit 0
  fi
fi

cd "$here"
export GOWORK=off
export CGO_ENABLED=1
# The tools module must never be modified implicitly.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly"

version="$(go list -m -f '{{.Version}}' github.com/ory/hydra/v2)"
log "building github.com/ory/hydra/v2@$version (cgo, sqlite) into $dir; a cold build takes a few minutes"

tmp="$(mktemp "$dir/hydra.tmp.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

start=$SECONDS
go build \
  -tags sqlite,sqlite_omit_load_extension \
  -trimpath \
  -buildvcs=false \
  -ldflags "-s -w -X github.com/ory/hydra/v2/driver/config.Version=$version -X github.com/ory/hydra/v2/driver/config.Commit=go-module -X github.com/ory/hydra/v2/driver/config.Date=undefined" \
  -o "$tmp" \
  github.com/ory/hydra/v2 >&2

"$tmp" version >&2
chmod 0755 "$tmp"
mv -f "$tmp" "$bin"
trap - EXIT
log "built $bin in $((SECONDS - start))s"
printf '%s\n' "$bin"
