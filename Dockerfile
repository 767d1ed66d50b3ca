# syntax=docker/dockerfile:1
# One image, one binary: `serve` (the webhook) and `elect` (the sidecar it
# injects). Built exactly as `make build` builds bin/singleton-webhook, the
# binary the tests exercise:  make docker-build IMG=...
FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
    -o /out/singleton-webhook .

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/singleton-webhook /singleton-webhook
USER 65532:65532
ENTRYPOINT ["/singleton-webhook"]
