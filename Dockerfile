# Ony in a container: a static binary on distroless, running as an unprivileged user.
#
#   docker build -t ony .          (make docker-check builds it and runs `ony version` in it)
#   docker run -p 8080:8080 -v ony-data:/var/lib/ony -e ONY_PUBLIC_URL=https://ony.example.com ony
#
# Configuration is ONY_* variables (secrets as ONY_*_FILE pointing at mounted files) or a file given
# with ONY_CONFIG; see docs/operations.md, "Container". Give it a stop timeout longer than
# shutdown_timeout (15 s): `docker run --stop-timeout 30`, compose `stop_grace_period: 30s`.
#
# There is no HEALTHCHECK: the final image has no shell, curl or wget, and Ony has no health
# subcommand. Probe GET /readyz (readiness) and GET /healthz (liveness) from the orchestrator.

# The builder's Go is go.mod's `go` line; deploy/deploy_test.go checks that they agree.
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# A release names itself: docker build --build-arg VERSION=v1.2.0 --build-arg COMMIT=$(git rev-parse HEAD) .
ARG VERSION=""
ARG COMMIT=""
# CGO_ENABLED=0: the SQLite driver is pure Go, so the binary is static and needs no libc.
# deploy/deploy_test.go builds with these flags and checks the result is a static ELF.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/ony-ai/ony/internal/version.version=${VERSION} -X github.com/ony-ai/ony/internal/version.commit=${COMMIT}" \
      -o /out/ony ./cmd/ony \
 && mkdir -p /out/data

# static-debian12 carries CA certificates (for Slack, Telegram, the providers, OIDC) and /etc/passwd
# with the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ony /usr/local/bin/ony
# The data directory is created owned by nonroot, so a new named volume starts out writable.
COPY --from=build --chown=65532:65532 /out/data /var/lib/ony
# Listen on every interface inside the container (the default, 127.0.0.1, is unreachable from
# outside it); set ONY_PUBLIC_URL to the address people and providers use.
ENV ONY_LISTEN=0.0.0.0:8080 \
    ONY_DATA_DIR=/var/lib/ony
VOLUME /var/lib/ony
EXPOSE 8080
USER nonroot:nonroot
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ony"]
CMD ["serve"]
