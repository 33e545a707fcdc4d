# spacerouter as a container image:
#   docker build --build-arg VERSION=1.2.3 -t spacerouter .
#   docker run -p 8080:8080 -v "$PWD/space.yaml:/etc/spacerouter/space.yaml:ro" spacerouter
# The config's listen addresses must be 0.0.0.0:PORT (not 127.0.0.1) to be
# reachable from outside the container.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X main.version=${VERSION}" \
	-o /out/spacerouter ./cmd/spacerouter

# Static binary, CA certificates, no shell, user 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/spacerouter /spacerouter
USER nonroot:nonroot
# http, https, admin (/metrics, /healthz)
EXPOSE 8080 8443 9090
ENTRYPOINT ["/spacerouter"]
CMD ["-config", "/etc/spacerouter/space.yaml"]
