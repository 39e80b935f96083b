# One poolproof fake service (payment, inventory or notification). The image
# holds nothing but the static poolproof binary (CGO_ENABLED=0), so building
# it needs no registry: see README.md for how the binary is built.
FROM scratch
COPY poolproof /poolproof
# 8443: the service (HTTPS with the CA given by -ca-cert/-ca-key, or a fresh
# one); 9000: its admin API. Inside a container "loopback only" would make
# them unreachable, so they listen on every interface of the container and
# the host publishes them on 127.0.0.1 only.
EXPOSE 8443 9000
ENTRYPOINT ["/poolproof", "fakeserver"]
CMD ["-service", "payment", "-listen", "0.0.0.0:8443", "-admin", "0.0.0.0:9000"]
