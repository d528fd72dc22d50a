# The image the Helm chart runs (helm/radar): the one `radar` binary on a minimal base, as a
# non-root user (uid 10001, the chart's securityContext), with nothing written outside the
# data volume and /tmp, so the root file system can be read-only.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p radar && strip target/release/radar

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/radar /usr/local/bin/radar
USER 10001:10001
# CWMP, USP WebSocket, the node API, the router API, cluster gRPC.
EXPOSE 7547 7548 7557 7558 7560
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/radar"]
CMD ["up", "--data-dir", "/data"]
