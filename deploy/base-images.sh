#!/usr/bin/env bash
# The base images the Dockerfile and docker-compose.yml name, made locally
# where no registry answers.
#
# For each image named by a FROM line of the Dockerfile or an `image:` of
# docker-compose.yml, nothing is done when Docker already has it or can
# pull it. Otherwise it is built here, under the very same name, so the
# Dockerfile and the compose file are used unchanged:
#
#   debian:bookworm-slim  mmdebstrap (minbase) from the Debian mirror, imported
#   rust:1.95-bookworm    that Debian image with gcc and the C headers, the Rust
#                         toolchain installed on this machine (it must be 1.95)
#                         and this machine's CA certificates
#   postgres:15           that Debian image with Debian's postgresql-15 and an
#                         entrypoint honouring POSTGRES_USER, POSTGRES_PASSWORD,
#                         POSTGRES_DB and PGDATA (/var/lib/postgresql/data)
#
# The CA certificates in /usr/local/share/ca-certificates/ go into the Rust
# builder so that `cargo build` inside it reaches crates.io through a
# TLS-inspecting proxy (a corporate one, or this project's machines').
#
# Needs root (mmdebstrap), Docker Engine with BuildKit (Debian's `docker.io`;
# a `docker` client without buildx cannot build these) and `mmdebstrap`.
# Settings: DEBIAN_MIRROR (default http://deb.debian.org/debian),
# DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's client builds with BuildKit; a newer one earlier in PATH may lack buildx.
if [ -x /usr/bin/docker ]; then export PATH="/usr/bin:$PATH"; fi
export DOCKER_BUILDKIT=1

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
work=$(mktemp -d /tmp/base-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

say() { echo "base-images: $*" >&2; }

# Runs a long step quietly, showing the end of its output if it fails.
quietly() {
    if ! "$@" >"$work/step.log" 2>&1; then
        say "failed: $*"
        tail -n 40 "$work/step.log" >&2
        exit 1
    fi
}

present() { docker image inspect "$1" >/dev/null 2>&1; }

# The names the Dockerfile and the compose file use, each once.
names() {
    {
        # FROM lines naming an image, not an earlier stage (`FROM runtime AS x`).
        awk 'toupper($1) == "FROM" { if (!($2 in stage)) print $2; if (toupper($3) == "AS") stage[$4] = 1 }' Dockerfile
        sed -n 's/^[[:space:]]*image:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\).*/\1/p' docker-compose.yml
    } | awk '!seen[$0]++'
}

debian_slim() { # $1: the tag, debian:SUITE-slim
    local suite=${1#debian:}
    suite=${suite%-slim}
    say "making $1 with mmdebstrap from $mirror"
    quietly mmdebstrap --variant=minbase \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --aptopt='APT::Install-Recommends "false"' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        "$suite" "$work/debian.tar" \
        "deb $mirror $suite main" \
        "deb $mirror $suite-updates main" \
        "deb $security $suite-security main"
    quietly docker import --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$work/debian.tar" "$1"
    rm -f "$work/debian.tar"
}

# The Debian image the others are made from: the slim image the Dockerfile names.
debian_base() {
    local base
    base=$(names | grep '^debian:.*-slim$' | head -n 1)
    echo "${base:-debian:bookworm-slim}"
}

ensure() { # $1: an image name
    if present "$1"; then
        say "$1: present"
        return
    fi
    if docker pull --quiet "$1" >/dev/null 2>&1; then
        say "$1: pulled"
        return
    fi
    case "$1" in
        debian:*-slim) debian_slim "$1" ;;
        rust:*-bookworm) rust_builder "$1" ;;
        postgres:*) postgres "$1" ;;
        *)
            say "$1 can neither be pulled nor made here: teach deploy/base-images.sh how"
            exit 1
            ;;
    esac
    say "$1: made locally"
}

rust_builder() { # $1: rust:VERSION-bookworm
    local version=${1#rust:}
    version=${version%-bookworm}
    local base sysroot found
    base=$(debian_base)
    ensure "$base"
    sysroot=$(rustup run "$version" rustc --print sysroot 2>/dev/null || rustc --print sysroot)
    found=$("$sysroot/bin/rustc" --version)
    case "$found" in
        "rustc $version."* | "rustc $version "*) ;;
        *)
            say "$1 needs Rust $version; the installed toolchain is $found (rustup toolchain install $version)"
            exit 1
            ;;
    esac
    say "making $1 from $base, $found ($sysroot) and the CA certificates in /usr/local/share/ca-certificates"
    local context="$work/rust"
    mkdir -p "$context/toolchain" "$context/ca-certificates"
    # Hard links where the same file system allows (no copy); the documentation is left out.
    for part in bin lib libexec etc; do
        [ -e "$sysroot/$part" ] || continue
        cp -al "$sysroot/$part" "$context/toolchain/" 2>/dev/null || cp -a "$sysroot/$part" "$context/toolchain/"
    done
    find /usr/local/share/ca-certificates -name '*.crt' -exec cp {} "$context/ca-certificates/" \; 2>/dev/null || true
    cat >"$context/Dockerfile" <<EOF
FROM $base
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates gcc g++ libc6-dev make pkg-config \\
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin RUST_VERSION=$version
COPY toolchain/ /usr/local/rustup/toolchains/$version/
RUN mkdir -p /usr/local/cargo/bin \\
    && ln -s /usr/local/rustup/toolchains/$version/bin/* /usr/local/cargo/bin/ \\
    && chmod -R a+w /usr/local/cargo \\
    && rustc --version && cargo --version
EOF
    quietly docker build --progress=plain --tag "$1" "$context"
    rm -rf "$context"
}

postgres() { # $1: postgres:MAJOR
    local major=${1#postgres:}
    local base
    base=$(debian_base)
    ensure "$base"
    say "making $1 from $base and Debian's postgresql-$major"
    local context="$work/postgres"
    mkdir -p "$context"
    cat >"$context/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# The official postgres image's interface: POSTGRES_USER (default postgres),
# POSTGRES_PASSWORD (required), POSTGRES_DB (default the user), PGDATA.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    # The first start listens on a private socket only, so that pg_isready
    # (the healthcheck) says nothing until the database exists.
    socket=$(mktemp -d)
    pg_ctl --silent --wait --options="-c listen_addresses='' -c unix_socket_directories=$socket" start
    if [ "$database" != postgres ]; then
        createdb --host="$socket" --username="$user" --maintenance-db=postgres "$database"
    fi
    pg_ctl --silent --wait --mode=fast stop
    rmdir "$socket"
    echo "PostgreSQL initialised in $PGDATA: user $user, database $database"
fi
exec "$@"
EOF
    cat >"$context/Dockerfile" <<EOF
FROM $base
RUN mkdir -p /etc/postgresql-common \\
    && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf \\
    && apt-get update \\
    && apt-get install -y --no-install-recommends postgresql-$major \\
    && rm -rf /var/lib/apt/lists/* \\
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \\
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/$major/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres", "-c", "listen_addresses=*"]
EOF
    chmod +x "$context/docker-entrypoint.sh"
    quietly docker build --progress=plain --tag "$1" "$context"
    rm -rf "$context"
}

docker info >/dev/null 2>&1 || {
    say "no Docker engine answers (docker info)"
    exit 1
}
for name in $(names); do
    ensure "$name"
done
