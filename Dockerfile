# keysmith: a static (musl) binary on a minimal, non-root base image.
#   docker build -t ghcr.io/keysmith-dev/keysmith:0.1.0 .
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev make
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin keysmith \
 && strip target/release/keysmith

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/release/keysmith /keysmith
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/keysmith"]
CMD ["run"]
