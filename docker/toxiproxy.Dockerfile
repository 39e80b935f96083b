# Toxiproxy's HTTP API, served by the same static poolproof binary
# ("poolproof toxiproxy"), so no registry is needed. Where the official image
# can be pulled, it is a drop-in replacement (harness.WithToxiproxyImage).
FROM scratch
COPY poolproof /poolproof
# 8474: the API. Proxies created through the API listen on the ports they
# name (the harness and compose.yaml use 21001-21003).
EXPOSE 8474 21001 21002 21003
ENTRYPOINT ["/poolproof", "toxiproxy"]
CMD ["-listen", "0.0.0.0:8474"]
