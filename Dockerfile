# syntax=docker/dockerfile:1
# The controller image: a release build of the vault-auth-kubernetes binary, copied alone onto
# distroless/cc (glibc, CA certificates, no shell, no package manager) and run as a non-root user.
#
#   docker build --build-arg VAK_GIT_REVISION="$(git rev-parse --short=12 HEAD)" \
#     -t vault-auth-kubernetes:dev .
#
# Needs BuildKit (the default builder of current Docker) for the cache mounts.

# Debian 12 (bookworm) to match the runtime image: a binary linked against a newer glibc (e.g.
# trixie's) would not start on distroless/cc-debian12.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# .git is not in the build context: `--version` gets the revision from this argument.
ARG VAK_GIT_REVISION=""
ENV VAK_GIT_REVISION=${VAK_GIT_REVISION}
COPY . .
# The release profile of Cargo.toml (optimised for size, one unit, fat LTO: see there why), and
# no symbols in the image.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
# The registry and target caches only speed up rebuilds; the binary is copied out of the cache
# mount because the mount is gone once this step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p vault-auth-kubernetes \
 && install -D -m 0755 target/release/vault-auth-kubernetes /out/vault-auth-kubernetes

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/vault-auth-kubernetes /usr/local/bin/vault-auth-kubernetes
# The "nonroot" user of distroless (65532), numeric so runAsNonRoot can verify it.
USER 65532:65532
# Admin server: /livez, /readyz, /metrics (VAK_ADMIN_PORT).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/vault-auth-kubernetes"]
