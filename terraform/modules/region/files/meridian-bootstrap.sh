#!/usr/bin/env bash
# meridian-bootstrap: first-boot set-up of a Meridian node, run once by cloud-init (runcmd).
# Re-running it is safe: each step checks what is already done.
#
# Reads /etc/meridian/bootstrap.env (rendered by terraform/modules/region). Steps:
#   1. check the instance is the node the configuration was rendered for (private IP);
#   2. create the `meridian` system user;
#   3. wait for the node's EBS data volume, make an XFS file system on it if it has none (a new
#      node; a replaced instance keeps its data), mount it at the data directory;
#   4. copy the TLS certificates and keys (node, WAN, API) from AWS Secrets Manager to the TLS
#      directory, and the API tokens file to /etc/meridian/tokens.toml, owned by meridian,
#      mode 0600;
#   5. install the release (meridian-install: SHA-256 verified);
#   6. `meridian config check` the node configuration;
#   7. start meridian.service and wait (bounded) for /healthz.
# Any failure stops here with a message naming the step; the service is not started.
set -Eeuo pipefail
umask 077

exec > >(tee -a /var/log/meridian-bootstrap.log) 2>&1

step=""
say() {
  step=$1
  echo "meridian-bootstrap: [$(date -u +%FT%TZ)] $step"
}
fail() {
  echo "meridian-bootstrap: FAILED during '$step': $*" >&2
  exit 1
}
trap 'fail "command failed (line $LINENO): $BASH_COMMAND"' ERR

# Retries a command (instance-profile credentials and NAT may take a moment after boot).
retry() {
  local attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if "$@"; then
      return 0
    fi
    echo "meridian-bootstrap: attempt $attempt of '$*' failed; retrying" >&2
    sleep 6
  done
  return 1
}

# shellcheck source=/dev/null
. /etc/meridian/bootstrap.env
: "${MBOOT_AWS_REGION:?}"
: "${MBOOT_NODE_ID:?}"
: "${MBOOT_REGION:?}"
: "${MBOOT_ADVERTISE_IP:?}"
: "${MBOOT_DATA_VOLUME_ID:?}"
: "${MBOOT_DATA_DIR:?}"
: "${MBOOT_TLS_DIR:?}"
: "${MBOOT_HTTP_PORT:?}"
: "${MBOOT_RELEASE_URL:?}"
: "${MBOOT_RELEASE_SHA256:?}"
: "${MBOOT_SECRET_CA_CERT:?}"
: "${MBOOT_SECRET_NODE_CERT:?}"
: "${MBOOT_SECRET_NODE_KEY:?}"
: "${MBOOT_SECRET_WAN_CA_CERT:?}"
: "${MBOOT_SECRET_WAN_CERT:?}"
: "${MBOOT_SECRET_WAN_KEY:?}"
: "${MBOOT_SECRET_API_CERT:?}"
: "${MBOOT_SECRET_API_KEY:?}"
: "${MBOOT_SECRET_API_TOKENS:?}"
: "${MBOOT_ENABLE_SSM:?}"
: "${MBOOT_CPU_ARCH:?}"

# ---------------------------------------------------------------------------------------------
say "checking the instance (IMDSv2)"
imds() {
  local token
  token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' http://169.254.169.254/latest/api/token)
  curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
instance_id=$(retry imds instance-id)
local_ip=$(retry imds local-ipv4)
echo "meridian-bootstrap: instance $instance_id, private IP $local_ip, node $MBOOT_NODE_ID of region $MBOOT_REGION"
[ "$local_ip" = "$MBOOT_ADVERTISE_IP" ] ||
  fail "this instance has private IP $local_ip but the configuration advertises $MBOOT_ADVERTISE_IP"
command -v aws >/dev/null || fail "the AWS CLI is missing (the cloud-init package step failed?)"
command -v mkfs.xfs >/dev/null || fail "mkfs.xfs is missing (the cloud-init package step failed?)"

# ---------------------------------------------------------------------------------------------
say "time synchronisation (Amazon Time Sync)"
if systemctl list-unit-files chrony.service >/dev/null 2>&1; then
  systemctl restart chrony.service || echo "meridian-bootstrap: warning: chrony did not restart" >&2
fi
sysctl --quiet --system >/dev/null || echo "meridian-bootstrap: warning: sysctl --system reported errors" >&2

# ---------------------------------------------------------------------------------------------
say "service user"
if ! getent passwd meridian >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir "$MBOOT_DATA_DIR" --shell /usr/sbin/nologin meridian
fi

# ---------------------------------------------------------------------------------------------
say "data volume $MBOOT_DATA_VOLUME_ID"
serial=${MBOOT_DATA_VOLUME_ID//-/}
device=""
for _ in $(seq 1 180); do
  # Nitro instances expose EBS volumes as NVMe devices whose serial is the volume id.
  for candidate in "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${serial}" /dev/xvdf; do
    if [ -b "$candidate" ]; then
      device=$(readlink -f "$candidate")
      break 2
    fi
  done
  found=$(lsblk --nodeps --noheadings --output NAME,SERIAL | awk -v s="$serial" '$2 == s { print "/dev/" $1 }')
  if [ -n "$found" ]; then
    device=$found
    break
  fi
  sleep 5
done
[ -n "$device" ] || fail "the data volume did not appear within 15 minutes (is it attached?)"
if ! blkid "$device" >/dev/null 2>&1; then
  echo "meridian-bootstrap: $device has no file system: a new node; making XFS"
  mkfs.xfs -q -L meridian-data "$device"
fi
fstype=$(blkid -s TYPE -o value "$device")
[ "$fstype" = xfs ] || fail "$device holds a $fstype file system, not the expected XFS; refusing to touch it"
uuid=$(blkid -s UUID -o value "$device")
mkdir -p "$MBOOT_DATA_DIR"
if ! grep -q "^UUID=$uuid " /etc/fstab; then
  echo "UUID=$uuid $MBOOT_DATA_DIR xfs defaults,noatime,nofail,x-systemd.device-timeout=5min 0 2" >>/etc/fstab
fi
systemctl daemon-reload
mountpoint -q "$MBOOT_DATA_DIR" || mount "$MBOOT_DATA_DIR"
chown meridian:meridian "$MBOOT_DATA_DIR"
chmod 0750 "$MBOOT_DATA_DIR"

# ---------------------------------------------------------------------------------------------
say "TLS material from Secrets Manager"
install -d -o meridian -g meridian -m 0700 "$MBOOT_TLS_DIR"
fetch_secret() {
  local arn=$1 name=$2 tmp
  tmp=$(mktemp "$MBOOT_TLS_DIR/.$name.XXXXXX")
  if ! retry aws --region "$MBOOT_AWS_REGION" secretsmanager get-secret-value \
    --secret-id "$arn" --query SecretString --output text >"$tmp"; then
    rm -f "$tmp"
    fail "cannot read secret $arn (for $name): does the instance role allow it?"
  fi
  if ! grep -q -- '-----BEGIN ' "$tmp"; then
    rm -f "$tmp"
    fail "secret $arn (for $name) is not a PEM file"
  fi
  chown meridian:meridian "$tmp"
  chmod 0600 "$tmp"
  mv -f "$tmp" "$MBOOT_TLS_DIR/$name"
  echo "meridian-bootstrap: wrote $MBOOT_TLS_DIR/$name"
}
fetch_secret "$MBOOT_SECRET_CA_CERT" ca.pem
fetch_secret "$MBOOT_SECRET_NODE_CERT" node.pem
fetch_secret "$MBOOT_SECRET_NODE_KEY" node.key
fetch_secret "$MBOOT_SECRET_WAN_CA_CERT" wan-ca.pem
fetch_secret "$MBOOT_SECRET_WAN_CERT" wan.pem
fetch_secret "$MBOOT_SECRET_WAN_KEY" wan.key
fetch_secret "$MBOOT_SECRET_API_CERT" api.pem
fetch_secret "$MBOOT_SECRET_API_KEY" api.key

# The API tokens file (auth.tokens_file): [[tokens]] entries from a secret, or none (the
# configuration's inline [[auth.tokens]] only).
tokens=/etc/meridian/tokens.toml
tmp=$(mktemp /etc/meridian/.tokens.XXXXXX)
if [ "$MBOOT_SECRET_API_TOKENS" = none ]; then
  echo "# No tokens here: see [[auth.tokens]] in node.toml." >"$tmp"
elif ! retry aws --region "$MBOOT_AWS_REGION" secretsmanager get-secret-value \
  --secret-id "$MBOOT_SECRET_API_TOKENS" --query SecretString --output text >"$tmp"; then
  rm -f "$tmp"
  fail "cannot read secret $MBOOT_SECRET_API_TOKENS (the API tokens file): does the instance role allow it?"
fi
chown meridian:meridian "$tmp"
chmod 0600 "$tmp"
mv -f "$tmp" "$tokens"
echo "meridian-bootstrap: wrote $tokens"

# ---------------------------------------------------------------------------------------------
say "release"
if [ -x /usr/local/bin/meridian ] && [ -f /etc/meridian/installed.sha256 ] &&
  [ "$(cat /etc/meridian/installed.sha256)" = "$MBOOT_RELEASE_SHA256" ]; then
  echo "meridian-bootstrap: release $MBOOT_RELEASE_SHA256 already installed"
else
  AWS_REGION=$MBOOT_AWS_REGION retry /usr/local/sbin/meridian-install "$MBOOT_RELEASE_URL" "$MBOOT_RELEASE_SHA256"
  echo "$MBOOT_RELEASE_SHA256" >/etc/meridian/installed.sha256
  chmod 0644 /etc/meridian/installed.sha256
fi

# ---------------------------------------------------------------------------------------------
say "configuration check"
chown root:meridian /etc/meridian /etc/meridian/node.toml
chmod 0750 /etc/meridian
chmod 0640 /etc/meridian/node.toml
# A clean environment: MERIDIAN_* variables would be read as configuration.
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin runuser -u meridian -- \
  /usr/local/bin/meridian config check /etc/meridian/node.toml ||
  fail "/etc/meridian/node.toml does not validate (see the error above)"

# ---------------------------------------------------------------------------------------------
if [ "$MBOOT_ENABLE_SSM" = true ] && ! systemctl list-unit-files amazon-ssm-agent.service >/dev/null 2>&1; then
  say "SSM agent"
  case "$MBOOT_CPU_ARCH" in
    x86_64) deb_arch=amd64 ;;
    arm64) deb_arch=arm64 ;;
    *) fail "unknown architecture $MBOOT_CPU_ARCH" ;;
  esac
  retry curl -fsSL --proto '=https' -o /tmp/amazon-ssm-agent.deb \
    "https://s3.${MBOOT_AWS_REGION}.amazonaws.com/amazon-ssm-${MBOOT_AWS_REGION}/latest/debian_${deb_arch}/amazon-ssm-agent.deb"
  dpkg -i /tmp/amazon-ssm-agent.deb
  rm -f /tmp/amazon-ssm-agent.deb
  systemctl enable --now amazon-ssm-agent.service
fi

# ---------------------------------------------------------------------------------------------
say "starting meridian.service"
systemctl daemon-reload
systemctl enable --now meridian.service

say "waiting for /healthz"
for _ in $(seq 1 60); do
  # The API serves HTTPS with a certificate for the clients' name, not 127.0.0.1: --insecure
  # is for this local liveness probe only (no token or data is sent).
  if body=$(curl -fsS --insecure "https://127.0.0.1:${MBOOT_HTTP_PORT}/healthz" 2>/dev/null); then
    echo "meridian-bootstrap: healthy: $body"
    say "done"
    exit 0
  fi
  sleep 5
done
# Not a failure: the first nodes of a new region wait for their peers to boot.
echo "meridian-bootstrap: warning: /healthz not ready after 5 minutes (other nodes still booting?);" \
  "see 'journalctl -u meridian'" >&2
say "done (service started, not yet healthy)"
