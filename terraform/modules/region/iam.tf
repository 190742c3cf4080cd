# IAM: the nodes' instance profile may read exactly the TLS secrets (and decrypt them through
# Secrets Manager when they use a customer-managed key) and, when the release is on S3,
# that one object. Nothing else, unless enable_ssm adds Session Manager.

locals {
  tls_secret_arns = distinct(concat(
    [var.tls_secrets.ca_cert, var.tls_secrets.wan_ca_cert, var.tls_secrets.wan_cert, var.tls_secrets.wan_key],
    flatten([for n in var.tls_secrets.node_certs : [n.cert, n.key]]),
    compact([var.tls_secrets.api_cert, var.tls_secrets.api_key, var.api_tokens_secret]),
  ))
  release_s3        = startswith(var.release_url, "s3://") ? regex("^s3://([^/]+)/(.+)$", var.release_url) : null
  release_s3_object = local.release_s3 == null ? null : "arn:${local.partition}:s3:::${local.release_s3[0]}/${local.release_s3[1]}"

  node_policy_statements = concat(
    [{
      Sid      = "ReadTlsSecrets"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      Resource = local.tls_secret_arns
    }],
    var.secrets_kms_key_arn == null ? [] : [{
      Sid      = "DecryptTlsSecrets"
      Effect   = "Allow"
      Action   = ["kms:Decrypt"]
      Resource = [var.secrets_kms_key_arn]
      Condition = {
        StringEquals = { "kms:ViaService" = "secretsmanager.${local.aws_region}.amazonaws.com" }
      }
    }],
    local.release_s3_object == null ? [] : [{
      Sid      = "ReadRelease"
      Effect   = "Allow"
      Action   = ["s3:GetObject"]
      Resource = [local.release_s3_object]
    }],
  )
}

resource "aws_iam_role" "node" {
  name        = "${local.name}-node"
  description = "Meridian nodes of region ${var.region_name}: read their TLS secrets"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = local.common_tags
}

resource "aws_iam_role_policy" "node" {
  name   = "read-tls-secrets"
  role   = aws_iam_role.node.id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.node_policy_statements })
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count = var.enable_ssm ? 1 : 0

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "node" {
  name = "${local.name}-node"
  role = aws_iam_role.node.name

  tags = local.common_tags
}

# ---------------------------------------------------------------------------------------------
# VPC flow logs

resource "aws_iam_role" "flow_logs" {
  name        = "${local.name}-flow-logs"
  description = "VPC flow logs of Meridian region ${var.region_name}"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = local.common_tags
}

resource "aws_iam_role_policy" "flow_logs" {
  name = "write-flow-logs"
  role = aws_iam_role.flow_logs.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
      ]
      Resource = [aws_cloudwatch_log_group.flow_logs.arn, "${aws_cloudwatch_log_group.flow_logs.arn}:*"]
    }]
  })
}
