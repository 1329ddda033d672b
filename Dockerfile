# Image of the wizard-oauth-refresh GitHub Docker container action.
#
# Both base images are build args, so they can be swapped without editing
# this file (a digest-pinned golang image, a mirror, or the offline builder
# that scripts/container/check.sh assembles from a local Go toolchain):
#
#   docker build -t wizard-oauth-refresh .
#   docker build --build-arg GO_IMAGE=golang:1.26 -t wizard-oauth-refresh .
#
# GO_IMAGE defaults to the `golang-base` stage below rather than to an image
# name, so that the golang tag sits on a literal FROM line that Dependabot
# can update (it does not expand `FROM ${ARG}`). BuildKit (docker build,
# buildx, the GitHub runner) resolves the stage name; buildah 1.28 (podman
# 4.3, Debian 12) does not, so pass --build-arg GO_IMAGE=golang:1.26 there.
# When GO_IMAGE is overridden, golang-base is unused: skipped, never pulled.
#
# Every RUN uses the exec (JSON) form: the builder image needs the Go
# toolchain, CA certificates, /tmp and a HOME, but no shell. No BuildKit-only
# syntax such as RUN --mount, so podman/buildah build it as well.
ARG GO_IMAGE=golang-base
ARG RUNTIME_IMAGE=scratch

FROM golang:1.26 AS golang-base

# The build stage runs on the build machine's platform and cross-compiles
# for the target (pure Go, CGO_ENABLED=0), so multi-arch release builds need
# no emulation for the compiler. Where the builder leaves TARGETOS/TARGETARCH
# empty (buildah 1.28), the go command builds for the build machine's
# platform. Needs BuildKit (Docker >= 23 default, as on GitHub's runners),
# buildx or buildah; the legacy DOCKER_BUILDKIT=0 builder is not supported.
FROM --platform=${BUILDPLATFORM} ${GO_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH

# Module source. Empty means the go command's default (module proxy +
# checksum database), as on GitHub's hosted builders. The offline container
# check passes GOPROXY=off together with a read-only bind mount of a
# populated module cache at /go/pkg/mod.
ARG GOPROXY=

ENV CGO_ENABLED=0 \
    GOTOOLCHAIN=local \
    GOOS=${TARGETOS} \
    GOARCH=${TARGETARCH}

# /rootfs is copied as-is into the runtime image: it gets the binary and a
# /tmp (scratch has none) for any os.TempDir() use. The RUN makes sure the
# directory exists on every builder (buildah creates a WORKDIR only when
# something runs in it) and logs the toolchain version.
WORKDIR /rootfs/tmp
RUN ["go", "version"]

WORKDIR /src

# Dependencies first: this layer is reused while go.mod/go.sum are unchanged.
COPY go.mod go.sum ./
RUN ["go", "mod", "download"]

COPY . .
RUN ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/rootfs/wizard-oauth-refresh", "."]

FROM ${RUNTIME_IMAGE}

ARG VERSION=dev
LABEL org.opencontainers.image.title="wizard-oauth-refresh" \
      org.opencontainers.image.description="GitHub Action: refreshes the Amplitude wizard's Ory Hydra OAuth token and rotates the repository's Actions secrets" \
      org.opencontainers.image.source="https://github.com/amplitude/wizard-oauth-refresh" \
      org.opencontainers.image.url="https://github.com/amplitude/wizard-oauth-refresh" \
      org.opencontainers.image.vendor="Amplitude" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/ /

# No USER: GitHub runs container actions as root (the workspace and file
# command mounts are owned by the runner user and written as root).
ENTRYPOINT ["/wizard-oauth-refresh"]
