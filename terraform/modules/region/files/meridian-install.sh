#!/usr/bin/env bash
# meridian-install URL SHA256
#
# Downloads a Meridian release (the `meridian` binary itself, or a .tar.gz / .tgz holding it at
# its top level) from an https:// or s3:// URL, refuses it unless its SHA-256 is SHA256, checks
# that it runs here (`meridian --version`), and installs it atomically as
# /usr/local/bin/meridian. It does not restart the service: for a rolling upgrade run it on one
# node, then `systemctl restart meridian` (docs/operations.md, "Rolling upgrade").
#
# Installed on every node by terraform/modules/region (cloud-init); used at first boot by
# meridian-bootstrap.
set -euo pipefail

die() {
  echo "meridian-install: $*" >&2
  exit 1
}

[ $# -eq 2 ] || die "usage: meridian-install URL SHA256"
url=$1
want=$2
[[ $want =~ ^[0-9a-f]{64}$ ]] || die "the checksum must be 64 lowercase hex digits, not '$want'"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "meridian-install: downloading $url"
case "$url" in
  s3://*)
    command -v aws >/dev/null || die "the AWS CLI is needed for an s3:// URL"
    aws s3 cp --only-show-errors "$url" "$work/download"
    ;;
  https://*)
    curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 \
      --retry 5 --retry-delay 3 --retry-connrefused --output "$work/download" "$url"
    ;;
  *)
    die "only https:// and s3:// URLs are accepted, not '$url'"
    ;;
esac

got=$(sha256sum "$work/download" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "checksum mismatch for $url: expected $want, got $got; nothing installed"
echo "meridian-install: sha256 $got verified"

case "$url" in
  *.tar.gz | *.tgz)
    mkdir "$work/unpacked"
    tar -xzf "$work/download" -C "$work/unpacked"
    bin="$work/unpacked/meridian"
    [ -f "$bin" ] || die "the archive has no 'meridian' at its top level"
    ;;
  *)
    bin="$work/download"
    ;;
esac

chmod 0755 "$bin"
version=$("$bin" --version) || die "the downloaded binary does not run on this machine (architecture or glibc?)"
install -o root -g root -m 0755 "$bin" /usr/local/bin/meridian.new
mv -f /usr/local/bin/meridian.new /usr/local/bin/meridian
echo "meridian-install: installed $version as /usr/local/bin/meridian"
