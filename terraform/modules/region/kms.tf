# The region's customer-managed KMS key: EBS volumes (root and data), the flow-log group and
# the backup vault. Rotated yearly.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id     = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition
  aws_region     = data.aws_region.current.name
  flow_log_group = "/meridian/${var.region_name}/vpc-flow-logs"
}

resource "aws_kms_key" "this" {
  description             = "Meridian region ${var.region_name}: EBS volumes, flow logs, backups"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # The account's IAM policies decide who else may use the key (the Terraform caller
        # for EBS, AWS Backup's service role).
        Sid       = "AccountAdministration"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "FlowLogGroup"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.aws_region}.amazonaws.com" }
        Action = [
          "kms:Encrypt*",
          "kms:Decrypt*",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnEquals = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.aws_region}:${local.account_id}:log-group:${local.flow_log_group}"
          }
        }
      },
    ]
  })

  tags = merge(local.common_tags, { Name = local.name })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}
