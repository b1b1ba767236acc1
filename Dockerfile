# CoreDNS with bluegreen, and bgctl: two static binaries on scratch, run as
# an unprivileged user, with the CA certificates for etcd over TLS and
# nothing else. `make image` builds it from what `make build` wrote, so it
# needs no registry; the context is bin/image, which make image fills:
# coredns (with the file capability to bind port 53), bgctl,
# ca-certificates.crt, passwd and group.
#
# Where a registry is reachable, a build stage can do make image's part
# instead: put this stage first, take the files from it, and build with the
# repository as the context (podman build -t IMAGE .).
#
#   FROM golang:1.26 AS build
#   RUN apt-get update && apt-get install -y libcap2-bin
#   WORKDIR /src
#   COPY . .
#   RUN make build && mkdir out && cp bin/coredns bin/bgctl /etc/ssl/certs/ca-certificates.crt out/ \
#    && setcap cap_net_bind_service=+ep out/coredns \
#    && echo 'nonroot:x:65532:65532:nonroot:/:/sbin/nologin' > out/passwd \
#    && echo 'nonroot:x:65532:' > out/group
#
# and in the COPY lines below, --from=build /src/out/FILE for each FILE.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd group /etc/
COPY coredns bgctl /
USER 65532:65532
# DNS, and the Corefile's prometheus (9153), health (8080) and ready (8181).
EXPOSE 53/udp 53/tcp 9153/tcp 8080/tcp 8181/tcp
ENTRYPOINT ["/coredns"]
