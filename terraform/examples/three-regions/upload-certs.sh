#!/usr/bin/env bash
# upload-certs.sh CERT_DIR [NODE_COUNT]
#
# Stores the certificates and keys of `meridian certs --out CERT_DIR --region us-east=node1,...`
# (or of your own PKI, laid out the same way) in AWS Secrets Manager, one secret per PEM file,
# each in the AWS region whose nodes read it, and writes secrets.auto.tfvars.json (the
# tls_secrets variable) beside this script. Re-running it updates the secrets' values.
#
#   CERT_DIR/ca.pem                  intra-region CA            -> every region
#   CERT_DIR/wan-ca.pem              cross-region CA            -> every region
#   CERT_DIR/REGION/nodeN.pem, .key  node certificates          -> REGION
#   CERT_DIR/REGION/wan.pem, .key    the region's WAN identity  -> REGION
#
# The CA private keys (ca.key, wan-ca.key) are never uploaded: keep them offline.
#
# Environment: SECRET_PREFIX (default "meridian"), KMS_KEY_ID (a KMS key id, alias or ARN
# valid in every region, e.g. "alias/meridian-secrets"; default: aws/secretsmanager). Needs the
# AWS CLI with credentials allowed to create secrets in us-east-1, eu-west-1, ap-southeast-1.
set -euo pipefail

die() {
  echo "upload-certs: $*" >&2
  exit 1
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  die "usage: upload-certs.sh CERT_DIR [NODE_COUNT (default 3)]"
fi
dir=$1
nodes=${2:-3}
prefix=${SECRET_PREFIX:-meridian}
[[ $nodes =~ ^[1-9][0-9]*$ ]] || die "NODE_COUNT must be a positive number"
command -v aws >/dev/null || die "the AWS CLI is needed"
out="$(cd "$(dirname "$0")" && pwd)/secrets.auto.tfvars.json"

declare -A aws_region=(["us-east"]=us-east-1 ["eu-west"]=eu-west-1 ["ap-southeast"]=ap-southeast-1)
regions=(us-east eu-west ap-southeast)

# Checks every file first, so that nothing is uploaded from an incomplete directory.
for f in "$dir/ca.pem" "$dir/wan-ca.pem"; do
  [ -f "$f" ] || die "missing $f"
done
for r in "${regions[@]}"; do
  for f in wan.pem wan.key; do
    [ -f "$dir/$r/$f" ] || die "missing $dir/$r/$f"
  done
  for ((n = 1; n <= nodes; n++)); do
    for ext in pem key; do
      [ -f "$dir/$r/node$n.$ext" ] || die "missing $dir/$r/node$n.$ext"
    done
  done
done

# put_secret AWS_REGION NAME FILE: creates or updates the secret; prints its ARN.
put_secret() {
  local region=$1 name=$2 file=$3 arn
  local kms=()
  if [ -n "${KMS_KEY_ID:-}" ]; then
    kms=(--kms-key-id "$KMS_KEY_ID")
  fi
  if arn=$(aws --region "$region" secretsmanager describe-secret --secret-id "$name" \
    --query ARN --output text 2>/dev/null); then
    aws --region "$region" secretsmanager put-secret-value --secret-id "$arn" \
      --secret-string "file://$file" >/dev/null
  else
    arn=$(aws --region "$region" secretsmanager create-secret --name "$name" "${kms[@]}" \
      --description "Meridian TLS material ($(basename "$file"))" \
      --secret-string "file://$file" --query ARN --output text)
  fi
  echo "upload-certs: $region $name" >&2
  printf '%s' "$arn"
}

json="{\n  \"tls_secrets\": {"
sep=""
for r in "${regions[@]}"; do
  ar=${aws_region[$r]}
  ca=$(put_secret "$ar" "$prefix/$r/ca.pem" "$dir/ca.pem")
  wan_ca=$(put_secret "$ar" "$prefix/$r/wan-ca.pem" "$dir/wan-ca.pem")
  wan_cert=$(put_secret "$ar" "$prefix/$r/wan.pem" "$dir/$r/wan.pem")
  wan_key=$(put_secret "$ar" "$prefix/$r/wan.key" "$dir/$r/wan.key")
  node_certs=""
  for ((n = 1; n <= nodes; n++)); do
    cert=$(put_secret "$ar" "$prefix/$r/node$n.pem" "$dir/$r/node$n.pem")
    key=$(put_secret "$ar" "$prefix/$r/node$n.key" "$dir/$r/node$n.key")
    node_certs+="${node_certs:+,}\n        {\"cert\": \"$cert\", \"key\": \"$key\"}"
  done
  json+="$sep\n    \"$r\": {\n      \"ca_cert\": \"$ca\",\n      \"node_certs\": [$node_certs\n      ],"
  json+="\n      \"wan_ca_cert\": \"$wan_ca\",\n      \"wan_cert\": \"$wan_cert\",\n      \"wan_key\": \"$wan_key\"\n    }"
  sep=","
done
json+="\n  }\n}\n"
printf '%b' "$json" >"$out"
echo "upload-certs: wrote $out"
