#!/usr/bin/env bash
# Checks the packages scripts/package.sh built (it calls this at its end):
#   scripts/package-test.sh [DIR]     (default target/package)
# - the binary is fully static (no dynamic section) and runs `--version` and
#   `check` on the shipped pipelines from the unpacked package tree alone
#   (chroot into it when root, else `env -i`);
# - metadata (name, version, arch, licence, conffiles) read back with
#   dpkg-deb and rpm -qp;
# - the packaged unit passes `systemd-analyze verify` (when installed);
# - an upgrade into a scratch dpkg root keeps a changed pipeline file and
#   takes the new version of an unchanged one.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(realpath "${1:-target/package}")
DEB=$(ls "$DIR"/logpipe_*.deb)
RPM=$(ls "$DIR"/logpipe-*.rpm)
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
failures=0
pass() { echo "package-test: ok: $*"; }
fail() { echo "package-test: FAILED: $*" >&2; failures=$((failures + 1)); }
expect() { # expect DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
has() { grep -qxF -- "$1" <<<"$2"; }

# rpm (rpm -qp, rpm2cpio) and cpio, where missing.
if ! { command -v rpm && command -v cpio; } >/dev/null && command -v apt-get >/dev/null; then
  sudo=""; [[ $EUID -eq 0 ]] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rpm cpio >/dev/null \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rpm cpio >/dev/null; }
fi

# ---- the binary, alone in its unpacked tree --------------------------------------------
run_alone() { # run_alone ROOT ARGS...: the tree's logpipe with nothing else around it
  local root=$1; shift
  if [[ $EUID -eq 0 ]]; then
    # Nothing but the package's files: no libc, no loader, no /proc.
    env -i "$(command -v chroot)" "$root" /usr/bin/logpipe "$@"
  else
    (cd "$root" && env -i ./usr/bin/logpipe "$@")
  fi
}
check_tree() { # check_TREE KIND ROOT
  local kind=$1 root=$2 out
  expect "$kind: no dynamic section" \
    grep -q "There is no dynamic section" <(readelf -d "$root/usr/bin/logpipe")
  expect "$kind: no program interpreter" \
    bash -c "! readelf -l '$root/usr/bin/logpipe' | grep -q INTERP"
  out=$(run_alone "$root" --version 2>&1) || true
  expect "$kind: --version alone in the tree ($out)" test "$out" = "logpipe $VERSION"
  out=$(run_alone "$root" check /etc/logpipe/pipelines 2>&1) && rc=0 || rc=$?
  expect "$kind: check of the shipped pipelines alone in the tree (exit $rc)" test "$rc" -eq 0
  [[ $rc -eq 0 ]] || echo "$out" >&2
  for f in usr/lib/systemd/system/logpipe.service etc/logpipe/logpipe.env etc/logpipe/logpipe.toml \
           usr/share/man/man1/logpipe.1.gz usr/share/man/man1/logpipe-run.1.gz \
           usr/share/bash-completion/completions/logpipe usr/share/fish/vendor_completions.d/logpipe.fish; do
    expect "$kind: ships /$f" test -s "$root/$f"
  done
}
mkdir -p "$SCRATCH/deb" "$SCRATCH/rpm"
dpkg-deb -x "$DEB" "$SCRATCH/deb"
# Debian's rpm2cpio exits 1 on cargo-generate-rpm's packages after writing the
# whole archive (no message); the checks below look at what it unpacked.
(cd "$SCRATCH/rpm" && { rpm2cpio "$RPM" || true; } | cpio -idm --quiet)
check_tree deb "$SCRATCH/deb"
check_tree rpm "$SCRATCH/rpm"
expect "deb: licences, vendored C libraries' included" \
  grep -q "vendored C sources: librdkafka/LICENSE" "$SCRATCH/deb/usr/share/doc/logpipe/THIRD-PARTY-LICENSES"
expect "rpm: licences, vendored OpenSSL's included" \
  grep -q "vendored C sources: openssl/LICENSE.txt" "$SCRATCH/rpm/usr/share/licenses/logpipe/THIRD-PARTY-LICENSES"
# (cargo-generate-rpm packages no empty directory: post-install makes it)
expect "rpm: post-install makes the state directory" \
  grep -q 'install -d -m 0700 "$root/var/lib/logpipe"' <(rpm -qp --scripts "$RPM" 2>/dev/null)
expect "env template is 0600" test "$(stat -c %a "$SCRATCH/deb/etc/logpipe/logpipe.env")" = 600

# ---- metadata, read back -------------------------------------------------------------------
expect "deb: Package logpipe" test "$(dpkg-deb -f "$DEB" Package)" = logpipe
expect "deb: Version $VERSION-1" test "$(dpkg-deb -f "$DEB" Version)" = "$VERSION-1"
expect "deb: Architecture amd64" test "$(dpkg-deb -f "$DEB" Architecture)" = amd64
expect "deb: no Depends (static)" test -z "$(dpkg-deb -f "$DEB" Depends)"
expect "deb: licence Apache-2.0 in the copyright file" \
  grep -q "Apache-2.0" "$SCRATCH/deb/usr/share/doc/logpipe/copyright"
mkdir -p "$SCRATCH/control"; dpkg-deb -e "$DEB" "$SCRATCH/control"
conffiles=$(cat "$SCRATCH/control/conffiles")
for f in /etc/logpipe/logpipe.toml /etc/logpipe/logpipe.env \
         /etc/logpipe/pipelines/httpd-access.toml /etc/logpipe/pipelines/httpd-error.toml; do
  expect "deb: conffile $f" has "$f" "$conffiles"
done
expect "deb: /usr/bin/logpipe in the contents" grep -q " ./usr/bin/logpipe$" <(dpkg-deb -c "$DEB")
expect "deb: postinst starts nothing" bash -c "! grep -Eq '^[[:space:]]*systemctl (start|enable|restart)' '$SCRATCH/control/postinst'"

meta=$(rpm -qp --queryformat '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}' "$RPM" 2>/dev/null)
expect "rpm: $meta" test "$meta" = "logpipe $VERSION 1 x86_64 Apache-2.0"
rpmconf=$(rpm -qp --configfiles "$RPM" 2>/dev/null)
for f in /etc/logpipe/logpipe.toml /etc/logpipe/logpipe.env \
         /etc/logpipe/pipelines/httpd-access.toml /etc/logpipe/pipelines/httpd-error.toml; do
  expect "rpm: %config $f" has "$f" "$rpmconf"
done
flags=$(rpm -qp --queryformat '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPM" 2>/dev/null)
expect "rpm: pipelines are %config(noreplace)" \
  grep -qx "/etc/logpipe/pipelines/httpd-access.toml cn" <<<"$flags"
expect "rpm: requires nothing but rpmlib, /bin/sh (its script) and its own config" \
  bash -c "! rpm -qp --requires '$RPM' 2>/dev/null | grep -Ev '^(rpmlib\(|/bin/sh$|config\(logpipe\))' | grep -q ."
expect "rpm: post-install starts nothing" \
  bash -c "! rpm -qp --scripts '$RPM' 2>/dev/null | grep -Eq '^[[:space:]]*systemctl (start|enable|restart)'"

# ---- the unit ------------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
  # ExecStart= must name an existing executable: the tree's own binary.
  sed "s|/usr/bin/logpipe|$SCRATCH/deb/usr/bin/logpipe|g" \
    "$SCRATCH/deb/usr/lib/systemd/system/logpipe.service" >"$SCRATCH/logpipe.service"
  expect "packaged unit names /usr/bin/logpipe" \
    grep -q "^ExecStart=/usr/bin/logpipe run" "$SCRATCH/deb/usr/lib/systemd/system/logpipe.service"
  expect "packaged unit: systemd-analyze verify" systemd-analyze verify "$SCRATCH/logpipe.service"
else
  echo "package-test: skipped: systemd-analyze verify (no systemd-analyze)"
fi

# ---- an upgrade keeps a changed pipeline ------------------------------------------------------
R=$SCRATCH/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
touch "$R/var/lib/dpkg/status"
dpkg_root() { # dpkg into the scratch root; scripts run outside it with DPKG_ROOT set
  dpkg --root="$R" --force-script-chrootless --force-not-root --force-bad-path \
    --log=/dev/null --no-triggers "$@"
}
# The next version: same files, but the package's httpd-error.toml changed.
dpkg-deb -R "$DEB" "$SCRATCH/next"
sed -i "s/^Version: .*/Version: $VERSION-2/" "$SCRATCH/next/DEBIAN/control"
echo "# changed upstream in $VERSION-2" >>"$SCRATCH/next/etc/logpipe/pipelines/httpd-error.toml"
dpkg-deb -b --root-owner-group "$SCRATCH/next" "$SCRATCH/next.deb" >/dev/null
if dpkg_root -i "$DEB" >"$SCRATCH/dpkg.log" 2>&1; then
  pass "dpkg -i into a scratch root"
  grep -q "systemctl enable --now logpipe" "$SCRATCH/dpkg.log" \
    && pass "post-install prints the enable hint" || fail "post-install prints the enable hint"
  expect "post-install made the state directory" test -d "$R/var/lib/logpipe"
  echo "# changed by the admin" >>"$R/etc/logpipe/pipelines/httpd-access.toml"
  if dpkg_root --force-confold -i "$SCRATCH/next.deb" >>"$SCRATCH/dpkg.log" 2>&1; then
    pass "upgrade to $VERSION-2"
    expect "upgrade kept the changed httpd-access.toml" \
      grep -q "changed by the admin" "$R/etc/logpipe/pipelines/httpd-access.toml"
    expect "upgrade took the new httpd-error.toml (unchanged by the admin)" \
      grep -q "changed upstream" "$R/etc/logpipe/pipelines/httpd-error.toml"
    expect "installed version is $VERSION-2" \
      grep -q "^Version: $VERSION-2" "$R/var/lib/dpkg/status"
  else
    fail "upgrade to $VERSION-2"; cat "$SCRATCH/dpkg.log" >&2
  fi
else
  fail "dpkg -i into a scratch root"; cat "$SCRATCH/dpkg.log" >&2
fi

if [[ $failures -gt 0 ]]; then
  echo "package-test: $failures check(s) failed" >&2
  exit 1
fi
echo "package-test: all checks passed ($DEB, $RPM)"
