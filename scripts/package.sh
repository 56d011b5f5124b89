#!/usr/bin/env bash
# Builds the fleet packages: one fully static x86_64 binary (musl) in a .deb
# and an .rpm, then checks them (scripts/package-test.sh).
#   scripts/package.sh            -> target/package/logpipe_<v>-1_amd64.deb, logpipe-<v>-1.x86_64.rpm
#   LOGPIPE_PACKAGE_SKIP_TEST=1   -> build only
# Needs: rustup target x86_64-unknown-linux-musl, musl-tools (musl-gcc),
# cmake, perl (the vendored OpenSSL). cargo-deb and cargo-generate-rpm are
# installed once into .test-cache/tools (git-ignored; CI keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=x86_64-unknown-linux-musl
OUT=$ROOT/target/package
STAGE=$OUT/stage
TOOLS=$ROOT/.test-cache/tools
CARGO_DEB_VERSION=3.8.0
CARGO_RPM_VERSION=0.21.1

log() { echo "package.sh: $*"; }
die() { echo "package.sh: ERROR: $*" >&2; exit 1; }

# ---- tools ---------------------------------------------------------------------------
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || rustup target add "$TARGET"
# musl-gcc (Debian's musl-tools), installed where missing, as package-test.sh
# installs rpm: a fresh machine has neither.
if ! command -v x86_64-linux-musl-gcc >/dev/null && ! command -v musl-gcc >/dev/null \
  && command -v apt-get >/dev/null; then
  sudo=""; [[ $EUID -eq 0 ]] || sudo=sudo
  log "installing musl-tools"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq musl-tools >/dev/null \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq musl-tools >/dev/null; }
fi
command -v x86_64-linux-musl-gcc >/dev/null || command -v musl-gcc >/dev/null \
  || die "musl-gcc is missing (Debian: apt-get install musl-tools)"
tool() { # tool CRATE VERSION BINARY: installs CRATE@VERSION into $TOOLS unless there
  local crate=$1 version=$2 bin=$3
  if ! "$TOOLS/bin/$bin" --version 2>/dev/null | grep -q "$version"; then
    log "installing $crate $version into $TOOLS (once)"
    cargo install --locked --quiet --root "$TOOLS" "$crate" --version "$version"
  fi
}
tool cargo-deb "$CARGO_DEB_VERSION" cargo-deb
tool cargo-generate-rpm "$CARGO_RPM_VERSION" cargo-generate-rpm
export PATH=$TOOLS/bin:$PATH

# ---- the static binary, the docs, the licences ----------------------------------------
log "building the static binary ($TARGET)"
cargo build --release --locked --target "$TARGET" --features gen-docs
BIN=$ROOT/target/$TARGET/release/logpipe
# C code (librdkafka, OpenSSL) allocates through mimalloc too (its
# `override` feature), not musl's slow malloc: `malloc` is `mi_malloc`.
malloc_at() { nm "$BIN" | awk -v s="$1" '$3 == s && $2 ~ /[TW]/ {print $1}'; }
[[ -n $(malloc_at mi_malloc) && $(malloc_at malloc) == $(malloc_at mi_malloc) ]] \
  || die "malloc in $BIN is not mimalloc's (the musl target's mimalloc needs the override feature)"
rm -rf "$STAGE"; mkdir -p "$STAGE"
# The debug line tables stay in target/ for symbolising; the package ships
# the stripped binary.
strip -o "$STAGE/logpipe" "$BIN"
"$STAGE/logpipe" generate-docs --out "$STAGE"
gzip -9n "$STAGE"/man/*.1
# The unit as shipped in the repository names /usr/local/bin (the cargo
# route); the package installs to /usr/bin.
sed 's|/usr/local/bin/logpipe|/usr/bin/logpipe|g' systemd/logpipe.service >"$STAGE/logpipe.service"
grep -q /usr/local/bin "$STAGE/logpipe.service" && die "the packaged unit still names /usr/local/bin"
python3 scripts/licenses.py --target "$TARGET" --features gen-docs --out "$STAGE/THIRD-PARTY-LICENSES"
mkdir -p "$OUT/deb-scripts"
cp packaging/postinst "$OUT/deb-scripts/postinst"

# ---- the packages -----------------------------------------------------------------------
rm -f "$OUT"/*.deb "$OUT"/*.rpm
log "building the .deb"
cargo deb --no-build --no-strip --target "$TARGET" --output "$OUT/"
log "building the .rpm"
# gzip payload: every rpm reads it (zstd needs rpm 4.14.2 or later).
cargo generate-rpm --target "$TARGET" --payload-compress gzip --output "$OUT/"
ls -l "$OUT"/*.deb "$OUT"/*.rpm

if [[ -z ${LOGPIPE_PACKAGE_SKIP_TEST:-} ]]; then
  scripts/package-test.sh "$OUT"
fi
