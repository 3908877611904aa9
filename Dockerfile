# The imageservice container: a static binary on distroless, run as non-root.
#   docker build -t imageservice .
# compose.yaml builds it too (docker compose up --build).

# Build stage: the Go toolchain the project is developed with, pinned.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (no cgo), reproducible paths, no symbol tables.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o /out/imageservice ./cmd/imageservice

# Final stage: no shell, no package manager; CA certificates, tzdata and /tmp
# come with the image; the nonroot user is uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/imageservice /usr/local/bin/imageservice
USER nonroot:nonroot
ENV HTTP_ADDR=:8080
EXPOSE 8080
# Ready means the database answers and is migrated (GET /readyz).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/imageservice", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/imageservice"]
CMD ["serve"]
