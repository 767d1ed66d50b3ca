# syntax=docker/dockerfile:1
# One image, one binary: `serve` (the webhook) and `elect` (the sidecar it
# injects). Built exactly as `make build` builds bin/singleton-webhook, the
# binary the tests exercise, and as `make image` builds the image without a
# daemon (the reviewed alternative to it):  make docker-build IMG=...
# Multi-platform (docker buildx --platform linux/amd64,linux/arm64): the Go
# toolchain runs natively and cross-compiles, as make image does.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux TARGETARCH=amd64 VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
    -o /out/singleton-webhook .

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/singleton-webhook /singleton-webhook
USER 65532:65532
ENTRYPOINT ["/singleton-webhook"]
