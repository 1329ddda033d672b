#!/usr/bin/env bash
# Container check for the wizard-oauth-refresh Docker container action.
#
# 1. Installs podman + runc (+ jq) from Debian when missing.
# 2. Writes a private podman config (runc, cgroupfs, lowered ulimits, its own
#    storage under $CONTAINER_CHECK_STATE; overlay when the kernel allows it,
#    else vfs) so nothing in /etc/containers or /var/lib/containers is touched.
# 3. Assembles the builder base image offline from the host's Go toolchain
#    (/usr/local/go or `go env GOROOT`) and CA bundle, and imports it.
#    The runtime base is `scratch` (the Dockerfile's default).
# 4. Builds the project's Dockerfile with --build-arg GO_IMAGE=<that image>,
#    with no network: modules come from the host module cache (bind-mounted
#    read-only, GOPROXY=off). --online lets the build use the module proxy
#    instead, as GitHub's builders do.
# 5. Checks the image (size < limit, ENTRYPOINT, no USER, OCI labels, static
#    trimmed binary) and reports image and binary sizes.
# 6. Unless --build-only: starts the emulator hook, runs the image the way the
#    GitHub runner runs a container action (mounts under /github, --workdir
#    /github/workspace, INPUT_* and GITHUB_* environment, file commands) and
#    then runs the verify hook. See start_emulator / run_action /
#    verify_action below.
#
# Exit status: 0 pass; 1 check failed; 2 usage; 3 containers cannot run on
# this machine (the reason is printed). With --allow-unavailable, case 3 exits
# 0 after a loud "CONTAINER CHECK NOT RUN:" line instead.
#
# Needs root (as CI and the sandbox sessions are), Go, and Debian's apt.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/container/check.sh [options]

  --allow-unavailable   if podman cannot work on this machine, print
                        "CONTAINER CHECK NOT RUN: <why>" and exit 0 (default:
                        exit 3)
  --build-only          build and inspect the image; skip the emulator run
  --online              let `go mod download` inside the build use the module
                        proxy (build with --network host) instead of the host
                        module cache with GOPROXY=off and --network none
  --context DIR         build context / repo root (default: this repo)
  --dockerfile FILE     default: <context>/Dockerfile
  --emulator-cmd CMD    emulator hook (default: go run ./cmd/sandbox --serve)
  --verify-cmd CMD      verify hook (default:
                        go run ./cmd/sandbox --check-output "$CHECK_OUTPUT_FILE")
  --max-image-bytes N   fail when the image is bigger (default 10000000)
  --keep                keep the per-run temp dir (workspace, file commands,
                        logs) and print its path
  -h, --help            this text

environment:
  CONTAINER_CHECK_STATE           state dir: podman storage, builder tarball,
                                  Go build cache (default
                                  /var/tmp/wizard-oauth-refresh-container-check)
  CONTAINER_CHECK_STORAGE_DRIVER  auto (default) | overlay | vfs
  CONTAINER_CHECK_RUN_TIMEOUT     seconds the action container may run (120)
  CONTAINER_CHECK_EMULATOR_TIMEOUT seconds to wait for the emulator's JSON
                                  line (300; `go run` compiles first)
EOF
}

# ----------------------------------------------------------------- options --
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
context="$(cd "$here/../.." && pwd)"
dockerfile=""
allow_unavailable=0
build_only=0
online=0
keep=0
max_image_bytes=10000000
emulator_cmd='go run ./cmd/sandbox --serve'
# shellcheck disable=SC2016 # expanded later by bash -c, with CHECK_* set
verify_cmd='go run ./cmd/sandbox --check-output "$CHECK_OUTPUT_FILE"'

while (($#)); do
  case "$1" in
    --allow-unavailable) allow_unavailable=1 ;;
    --build-only) build_only=1 ;;
    --online) online=1 ;;
    --keep) keep=1 ;;
    --context) context="$(cd "${2:?--context needs a dir}" && pwd)"; shift ;;
    --dockerfile) dockerfile="${2:?--dockerfile needs a file}"; shift ;;
    --emulator-cmd) emulator_cmd="${2:?--emulator-cmd needs a command}"; shift ;;
    --verify-cmd) verify_cmd="${2:?--verify-cmd needs a command}"; shift ;;
    --max-image-bytes) max_image_bytes="${2:?--max-image-bytes needs a number}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "check.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
dockerfile="${dockerfile:-$context/Dockerfile}"

state="${CONTAINER_CHECK_STATE:-/var/tmp/wizard-oauth-refresh-container-check}"
run_timeout="${CONTAINER_CHECK_RUN_TIMEOUT:-120}"
emulator_timeout="${CONTAINER_CHECK_EMULATOR_TIMEOUT:-300}"
image="localhost/wizard-oauth-refresh:check"
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=1000:1000)

# ----------------------------------------------------------------- helpers --
t_start=$SECONDS
declare -a timings=()
phase_t=$SECONDS
log() { printf 'container-check: %s\n' "$*" >&2; }
die() { printf 'container-check: FAIL: %s\n' "$*" >&2; exit 1; }
phase_done() { timings+=("$1=$((SECONDS - phase_t))s"); phase_t=$SECONDS; }

# Containers cannot work here: say why, plainly, and never pass silently.
unavailable() {
  if ((allow_unavailable)); then
    printf '\nCONTAINER CHECK NOT RUN: %s\n\n' "$*"
    exit 0
  fi
  printf 'container-check: containers cannot run on this machine: %s\n' "$*" >&2
  printf 'container-check: (pass --allow-unavailable to report this and exit 0)\n' >&2
  exit 3
}

run_dir=""
emulator_pgid=""
container_name="wizard-oauth-refresh-check-$$"
cleanup() {
  local rc=$?
  if [[ -n "$emulator_pgid" ]]; then
    kill -TERM -- "-$emulator_pgid" 2>/dev/null || true
    sleep 0.2
    kill -KILL -- "-$emulator_pgid" 2>/dev/null || true
  fi
  if command -v podman >/dev/null 2>&1 && [[ -n "${CONTAINERS_CONF:-}" ]]; then
    podman rm -f --ignore "$container_name" "$container_name-cp" >/dev/null 2>&1 || true
  fi
  if [[ -n "$run_dir" ]]; then
    if ((keep)); then log "kept $run_dir"; else rm -rf "$run_dir"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----------------------------------------------------------- prerequisites --
[[ "$(id -u)" == 0 ]] || unavailable "needs root (rootful podman with runc); running as uid $(id -u)"
command -v go >/dev/null 2>&1 || die "go not found in PATH"
[[ -f "$dockerfile" ]] || die "no Dockerfile at $dockerfile"

install_tools() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  ((${#missing[@]})) || { log "podman, runc, jq already installed"; return 0; }
  command -v apt-get >/dev/null 2>&1 || unavailable "podman/runc/jq missing and no apt-get to install them"
  log "installing ${missing[*]} from Debian"
  local aptlog="$state/apt.log"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      podman runc jq conmon containernetworking-plugins ca-certificates; } >"$aptlog" 2>&1; then
    tail -n 20 "$aptlog" >&2
    unavailable "apt-get could not install podman/runc/jq (log above, full log $aptlog)"
  fi
}

mkdir -p "$state"
install_tools
log "$(podman --version), $(runc --version | head -n 1)"
phase_done apt

# ------------------------------------------------------ podman configuration --
# Overlay needs a kernel overlayfs that accepts mounts here; probe it for
# real (podman would otherwise fail later with a less obvious message).
overlay_works() {
  local d
  d="$(mktemp -d "$state/overlay-probe.XXXXXX")"
  mkdir -p "$d"/{lower,upper,work,merged}
  local ok=1
  if mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
    umount "$d/merged" && ok=0
  fi
  rm -rf "$d"
  return "$ok"
}

driver="${CONTAINER_CHECK_STORAGE_DRIVER:-auto}"
if [[ "$driver" == auto ]]; then
  if overlay_works; then driver=overlay; else driver=vfs; fi
fi
case "$driver" in overlay|vfs) ;; *) die "CONTAINER_CHECK_STORAGE_DRIVER must be auto, overlay or vfs" ;; esac

conf="$state/conf"
# Runtime state on /run, one dir per state dir so two state dirs never share it.
runroot="/run/wizard-oauth-refresh-check/$(printf '%s' "$state" | sha256sum | cut -c1-8)"
mkdir -p "$conf" "$state/storage-$driver" "$runroot" "$state/gocache"
cat >"$conf/containers.conf" <<EOF
# generated by scripts/container/check.sh
[containers]
# runc refuses podman's default (raised) rlimits in this sandbox.
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$runroot/libpod"
EOF
cat >"$conf/storage.conf" <<EOF
# generated by scripts/container/check.sh
[storage]
driver = "$driver"
graphroot = "$state/storage-$driver"
runroot = "$runroot/storage-$driver"
EOF
# No registry is reachable: never resolve short names against one.
cat >"$conf/registries.conf" <<'EOF'
unqualified-search-registries = []
EOF
export CONTAINERS_CONF="$conf/containers.conf"
export CONTAINERS_STORAGE_CONF="$conf/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$conf/registries.conf"
log "storage driver $driver, state $state"

podman info >"$state/podman-info.txt" 2>&1 || { tail -n 20 "$state/podman-info.txt" >&2; unavailable "podman info fails (above)"; }

# ------------------------------------------------------- builder base image --
goroot="$(go env GOROOT)"
go_version="$(go env GOVERSION)"
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[[ -f "$ca_bundle" ]] || die "no CA bundle at $ca_bundle (apt-get install ca-certificates)"
builder_key="$({ "$goroot/bin/go" version; sha256sum "$goroot/bin/go" "$goroot/pkg/tool/"*/compile "$ca_bundle"; } | sha256sum | cut -c1-12)"
builder_image="localhost/wizard-oauth-refresh/go-builder:${go_version#go}-$builder_key"

assemble_builder() {
  local skel="$state/builder-skeleton" parent base
  rm -rf "$skel"
  mkdir -p "$skel"/{etc/ssl/certs,tmp,root,go/bin,go/pkg/mod,usr/local,src}
  chmod 1777 "$skel/tmp"
  chmod 700 "$skel/root"
  cp "$ca_bundle" "$skel/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$skel/etc/passwd"
  printf 'root:x:0:\n' >"$skel/etc/group"
  parent="$(dirname "$goroot")" base="$(basename "$goroot")"
  # One tar stream: the skeleton plus the host toolchain as /usr/local/go
  # (what go build needs: bin, pkg/tool, src, lib, go.env, VERSION; tests,
  # API lists and docs are left out). The image config mirrors the golang
  # image: GOPATH=/go, toolchain on PATH, GOTOOLCHAIN=local.
  tar --numeric-owner --owner=0 --group=0 -cf - \
      -C "$skel" . \
      -C "$parent" --exclude="$base/test" --exclude="$base/api" --exclude="$base/doc" \
      --transform="s,^$base\(/\|\$\),usr/local/go\1," "$base" |
    podman import \
      --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV GOPATH=/go' \
      --change 'ENV GOTOOLCHAIN=local' \
      --change 'ENV HOME=/root' \
      --change 'WORKDIR /go' \
      - "$builder_image" >/dev/null
  local rc=("${PIPESTATUS[@]}")
  rm -rf "$skel"
  [[ "${rc[0]}" == 0 && "${rc[1]}" == 0 ]]
}

if podman image exists "$builder_image"; then
  log "builder image $builder_image present"
else
  log "assembling builder image $builder_image from $goroot and $ca_bundle"
  assemble_builder || unavailable "podman import of the builder rootfs failed"
fi
# Builder images of other toolchains are stale: drop them (and their layers).
podman images --format '{{.Repository}}:{{.Tag}}' --filter 'reference=localhost/wizard-oauth-refresh/go-builder' |
  grep -vxF "$builder_image" | xargs -r podman rmi -f >/dev/null 2>&1 || true
# A container must start at all; otherwise this machine cannot do the check.
if ! probe_out="$(podman run --rm --network none "${ulimits[@]}" "$builder_image" go version 2>&1)"; then
  printf '%s\n' "$probe_out" >&2
  unavailable "podman cannot start a container with runc here (above)"
fi
log "builder runs: $probe_out"
phase_done builder-image

# -------------------------------------------------------------------- build --
# buildah 1.28 does not fill in TARGETOS/TARGETARCH itself.
build_args=(--build-arg "GO_IMAGE=$builder_image"
  --build-arg "TARGETOS=$(go env GOOS)" --build-arg "TARGETARCH=$(go env GOARCH)")
if ((online)); then
  build_net=(--network host)
  log "building with the module proxy reachable (--online)"
else
  # Offline: fill the host module cache (the host reaches the proxy), then
  # hand it to the build read-only with GOPROXY=off and no network at all.
  (cd "$context" && go mod download) || die "go mod download failed on the host"
  modcache="$(cd "$context" && go env GOMODCACHE)"
  build_net=(--network none -v "$modcache:/go/pkg/mod:ro")
  build_args+=(--build-arg GOPROXY=off)
fi
log "podman build -f $dockerfile $context"
podman build --runtime runc "${ulimits[@]}" "${build_net[@]}" \
  -v "$state/gocache:/root/.cache/go-build" \
  "${build_args[@]}" \
  -t "$image" -f "$dockerfile" "$context" || die "podman build failed"
# Drop dangling build leftovers older than a day; younger ones are the warm cache.
podman image prune -f --filter until=24h >/dev/null 2>&1 || true
phase_done build

# -------------------------------------------------------------- inspection --
image_bytes="$(podman image inspect --format '{{.Size}}' "$image")"
entrypoint="$(podman image inspect --format '{{json .Config.Entrypoint}}' "$image")"
user="$(podman image inspect --format '{{.Config.User}}' "$image")"
labels="$(podman image inspect --format '{{json .Config.Labels}}' "$image")"

bin_dir="$state/binary"
rm -rf "$bin_dir" && mkdir -p "$bin_dir"
podman create --name "$container_name-cp" "$image" >/dev/null
podman cp "$container_name-cp:/wizard-oauth-refresh" "$bin_dir/wizard-oauth-refresh"
podman export "$container_name-cp" | tar -tvf - >"$bin_dir/files.txt"
podman rm -f "$container_name-cp" >/dev/null
bin_bytes="$(stat -c %s "$bin_dir/wizard-oauth-refresh")"
buildinfo="$(go version -m "$bin_dir/wizard-oauth-refresh")"

failures=()
[[ "$entrypoint" == '["/wizard-oauth-refresh"]' ]] || failures+=("ENTRYPOINT is $entrypoint, want [\"/wizard-oauth-refresh\"]")
[[ -z "$user" || "$user" == root || "$user" == 0 || "$user" == 0:0 ]] || failures+=("image sets USER $user; GitHub runs container actions as root")
for l in source description licenses; do
  jq -e --arg k "org.opencontainers.image.$l" 'has($k) and (.[$k] | length > 0)' <<<"$labels" >/dev/null ||
    failures+=("missing label org.opencontainers.image.$l")
done
grep -q 'CGO_ENABLED=0' <<<"$buildinfo" || failures+=("binary not built with CGO_ENABLED=0")
grep -q -- '-trimpath=true' <<<"$buildinfo" || failures+=("binary not built with -trimpath")
grep -q ' etc/ssl/certs/ca-certificates.crt$' "$bin_dir/files.txt" || failures+=("no /etc/ssl/certs/ca-certificates.crt in the image")
((image_bytes < max_image_bytes)) || failures+=("image is $image_bytes bytes, limit $max_image_bytes")

log "image $image: $image_bytes bytes ($((image_bytes / 1024)) KiB); binary: $bin_bytes bytes ($((bin_bytes / 1024)) KiB)"
log "image files:"; sed 's/^/    /' "$bin_dir/files.txt" >&2
log "binary: $(head -n 1 <<<"$buildinfo" | cut -f2-); $(grep -E "^\s+build\s+(-ldflags|-trimpath|CGO_ENABLED|GOOS|GOARCH)=" <<<"$buildinfo" | cut -f3- | tr "\n" " ")"
((${#failures[@]} == 0)) || { printf 'container-check: FAIL: %s\n' "${failures[@]}" >&2; exit 1; }
phase_done inspect

report() {
  printf 'container-check: image_bytes=%s binary_bytes=%s storage=%s timings: %s total=%ss\n' \
    "$image_bytes" "$bin_bytes" "$driver" "${timings[*]}" "$((SECONDS - t_start))"
}

if ((build_only)); then
  report
  echo "container-check: emulator run skipped (--build-only)"
  echo "container-check: 1 passed, 0 failed, 1 skipped"
  exit 0
fi

# ======================================================= emulator run part ==
# The hooks. The emulator command runs in $context in its own process group;
# its first stdout line that starts with '{' must be a JSON object:
#   {"token_url": "...", "api_url": "...", "repository": "owner/name",
#    "refresh_token": "...", "github_token": "...",
#    "run_id": 123,                    (optional)
#    "inputs": {"min-ttl": "20m"},     (optional: extra/overriding inputs)
#    "env": {"NAME": "value"}}         (optional: extra container env)
# after which it keeps serving on loopback until killed.
emu_json=""
start_emulator() {
  local out="$run_dir/emulator.stdout" err="$run_dir/emulator.stderr"
  log "emulator hook: $emulator_cmd"
  (cd "$context" && exec setsid bash -c "$emulator_cmd") >"$out" 2>"$err" </dev/null &
  emulator_pgid=$!
  local deadline=$((SECONDS + emulator_timeout))
  while :; do
    emu_json="$(grep -m1 '^{' "$out" 2>/dev/null || true)"
    [[ -n "$emu_json" ]] && break
    if ! kill -0 "$emulator_pgid" 2>/dev/null; then
      tail -n 30 "$err" >&2
      die "emulator hook exited before printing its JSON line"
    fi
    ((SECONDS < deadline)) || { tail -n 30 "$err" >&2; die "no JSON line from the emulator hook within ${emulator_timeout}s"; }
    sleep 0.2
  done
  jq -e 'type == "object" and (.token_url|type=="string") and (.api_url|type=="string")
         and (.repository|type=="string") and (.refresh_token|type=="string")
         and (.github_token|type=="string")' <<<"$emu_json" >/dev/null ||
    die "emulator JSON line lacks token_url/api_url/repository/refresh_token/github_token: $emu_json"
  log "emulator up: api $(jq -r .api_url <<<"$emu_json"), token $(jq -r .token_url <<<"$emu_json"), repo $(jq -r .repository <<<"$emu_json")"
}

# Runs the image like the GitHub runner runs a Docker container action
# (actions/runner ContainerActionHandler): --rm, --workdir /github/workspace,
# /github/{home,workflow,file_commands,workspace} bind mounts, env passed by
# name (-e NAME, values from the environment, so secrets stay off the command
# line), file-command paths under /github/file_commands. Differences: the
# network is the host's (the emulator listens on loopback) instead of a
# per-job bridge, and there is no docker.sock mount.
container_rc=""
run_action() {
  local ws="$run_dir/workspace" fc="$run_dir/file_commands" home="$run_dir/home" wf="$run_dir/workflow"
  mkdir -p "$ws" "$fc" "$home" "$wf"
  local id; id="$(cat /proc/sys/kernel/random/uuid)"
  : >"$fc/set_output_$id"; : >"$fc/step_summary_$id"; : >"$fc/set_env_$id"; : >"$fc/add_path_$id"; : >"$fc/save_state_$id"
  export CHECK_OUTPUT_FILE="$fc/set_output_$id" CHECK_SUMMARY_FILE="$fc/step_summary_$id"
  export CHECK_ENV_FILE="$fc/set_env_$id" CHECK_FILE_COMMANDS="$fc" CHECK_WORKSPACE="$ws"
  export CHECK_CONTAINER_LOG="$run_dir/container.log"
  local repo run_id
  repo="$(jq -r .repository <<<"$emu_json")"
  run_id="$(jq -r '.run_id // 4242' <<<"$emu_json")"
  printf '{"schedule":"23 * * * *","repository":{"full_name":"%s"}}\n' "$repo" >"$wf/event.json"

  # name=value pairs; names may contain '-' (INPUT_REFRESH-TOKEN), which bash
  # cannot export, hence env(1) below.
  local -a pairs=(
    "INPUT_ZONE=us"
    "INPUT_REFRESH-TOKEN=$(jq -r .refresh_token <<<"$emu_json")"
    "INPUT_GITHUB-TOKEN=$(jq -r .github_token <<<"$emu_json")"
    "INPUT_EXPIRES-AT="
    "INPUT_MIN-TTL=20m"
    "INPUT_TOKEN-URL=$(jq -r .token_url <<<"$emu_json")"
    "HOME=/github/home"
    "CI=true"
    "GITHUB_ACTIONS=true"
    "GITHUB_API_URL=$(jq -r .api_url <<<"$emu_json")"
    "GITHUB_SERVER_URL=https://github.com"
    "GITHUB_GRAPHQL_URL=$(jq -r .api_url <<<"$emu_json")/graphql"
    "GITHUB_REPOSITORY=$repo"
    "GITHUB_REPOSITORY_OWNER=${repo%%/*}"
    "GITHUB_RUN_ID=$run_id"
    "GITHUB_RUN_NUMBER=1"
    "GITHUB_RUN_ATTEMPT=1"
    "GITHUB_WORKFLOW=refresh-wizard-oauth-token"
    "GITHUB_JOB=refresh"
    "GITHUB_ACTION=__self"
    "GITHUB_ACTOR=github-actions[bot]"
    "GITHUB_EVENT_NAME=schedule"
    "GITHUB_EVENT_PATH=/github/workflow/event.json"
    "GITHUB_REF=refs/heads/main"
    "GITHUB_SHA=0000000000000000000000000000000000000000"
    "GITHUB_WORKSPACE=/github/workspace"
    "GITHUB_OUTPUT=/github/file_commands/set_output_$id"
    "GITHUB_STEP_SUMMARY=/github/file_commands/step_summary_$id"
    "GITHUB_ENV=/github/file_commands/set_env_$id"
    "GITHUB_PATH=/github/file_commands/add_path_$id"
    "GITHUB_STATE=/github/file_commands/save_state_$id"
    "RUNNER_OS=Linux"
    "RUNNER_ARCH=X64"
    "RUNNER_NAME=container-check"
    "RUNNER_ENVIRONMENT=github-hosted"
  )
  local k v
  while IFS=$'\t' read -r k v; do
    [[ -n "$k" ]] && pairs+=("INPUT_$(tr '[:lower:] ' '[:upper:]_' <<<"$k")=$v")
  done < <(jq -r '(.inputs // {}) | to_entries[] | [.key, (.value|tostring)] | @tsv' <<<"$emu_json")
  while IFS=$'\t' read -r k v; do
    [[ -n "$k" ]] && pairs+=("$k=$v")
  done < <(jq -r '(.env // {}) | to_entries[] | [.key, (.value|tostring)] | @tsv' <<<"$emu_json")

  local -a env_flags=() p
  declare -A seen=()
  for p in "${pairs[@]}"; do
    k="${p%%=*}"
    [[ -n "${seen[$k]:-}" ]] || env_flags+=(-e "$k")
    seen[$k]=1
  done

  log "running the action container (timeout ${run_timeout}s)"
  set +e
  env "${pairs[@]}" timeout --kill-after=10 "$run_timeout" \
    podman run --rm --name "$container_name" --runtime runc "${ulimits[@]}" \
      --network host \
      --label wizard-oauth-refresh-check=1 \
      --workdir /github/workspace \
      "${env_flags[@]}" \
      -v "$home:/github/home" \
      -v "$wf:/github/workflow" \
      -v "$fc:/github/file_commands" \
      -v "$ws:/github/workspace" \
      "$image" 2>&1 | tee "$CHECK_CONTAINER_LOG" | grep -v --line-buffered '^::add-mask::' | sed 's/^/    | /' >&2
  container_rc=${PIPESTATUS[0]}
  set -e
  export CHECK_EXIT_CODE="$container_rc"
  log "action container exited $container_rc"
  # The access-token output is a secret (masked by the runner): shown as ***.
  log "outputs:"; awk '/^access-token<</ {print; getline; print "***"; next} {print}' "$CHECK_OUTPUT_FILE" | sed 's/^/    /' >&2
}

# Generic checks, then the verify hook (run in $context with CHECK_* set and
# the emulator still serving; CHECK_API_URL / CHECK_TOKEN_URL point at it).
verify_action() {
  [[ "$container_rc" != 124 ]] || die "the action container did not finish within ${run_timeout}s (CONTAINER_CHECK_RUN_TIMEOUT)"
  [[ "$container_rc" == 0 ]] || die "the action container exited $container_rc"
  [[ -s "$CHECK_OUTPUT_FILE" ]] || die "the action wrote no outputs to \$GITHUB_OUTPUT"
  # Input secrets may appear in the log only on ::add-mask:: lines.
  local secret
  for secret in "$(jq -r .refresh_token <<<"$emu_json")" "$(jq -r .github_token <<<"$emu_json")"; do
    [[ -n "$secret" ]] || continue
    if grep -F -- "$secret" "$CHECK_CONTAINER_LOG" | grep -v -q '^::add-mask::'; then
      die "a token from the inputs appears unmasked in the container log"
    fi
  done
  export CHECK_API_URL CHECK_TOKEN_URL CHECK_EMULATOR_JSON="$emu_json"
  CHECK_API_URL="$(jq -r .api_url <<<"$emu_json")"
  CHECK_TOKEN_URL="$(jq -r .token_url <<<"$emu_json")"
  log "verify hook: $verify_cmd"
  (cd "$context" && bash -c "$verify_cmd") || die "verify hook failed"
}

run_dir="$(mktemp -d /tmp/wizard-oauth-refresh-check.XXXXXX)"
start_emulator
run_action
verify_action
phase_done run
report
echo "container-check: 1 passed, 0 failed"
