# Daily AWS Backup snapshots of the data volumes, into a vault encrypted with the region's
# key. EBS snapshots are crash-consistent per volume: restoring one is like restarting the
# node after a power cut (durability = "sync" keeps every acknowledged write). A snapshot
# older than storage.gc_grace_secs must never be restored (deleted data would come back):
# the retention is checked against it. docs/operations.md, "Snapshot and restore".

resource "aws_backup_vault" "this" {
  count = var.backup.enabled ? 1 : 0

  name        = local.name
  kms_key_arn = aws_kms_key.this.arn

  tags = local.common_tags
}

resource "aws_backup_plan" "this" {
  count = var.backup.enabled ? 1 : 0

  name = local.name

  rule {
    rule_name         = "daily-data-volumes"
    target_vault_name = aws_backup_vault.this[0].name
    schedule          = var.backup.schedule
    start_window      = 60
    completion_window = 240

    lifecycle {
      delete_after = var.backup.retention_days
    }
  }

  tags = local.common_tags

  lifecycle {
    precondition {
      condition     = var.backup.retention_days * 86400 < var.cluster_settings.gc_grace_secs
      error_message = "backup.retention_days must be shorter than cluster_settings.gc_grace_secs: an older snapshot cannot be restored safely."
    }
  }
}

resource "aws_iam_role" "backup" {
  count = var.backup.enabled ? 1 : 0

  name        = "${local.name}-backup"
  description = "AWS Backup of the Meridian data volumes of region ${var.region_name}"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "backup.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = local.common_tags
}

resource "aws_iam_role_policy_attachment" "backup" {
  count = var.backup.enabled ? 1 : 0

  role       = aws_iam_role.backup[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
}

resource "aws_iam_role_policy_attachment" "backup_restores" {
  count = var.backup.enabled ? 1 : 0

  role       = aws_iam_role.backup[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"
}

resource "aws_backup_selection" "data" {
  count = var.backup.enabled ? 1 : 0

  name         = "data-volumes"
  plan_id      = aws_backup_plan.this[0].id
  iam_role_arn = aws_iam_role.backup[0].arn
  resources    = aws_ebs_volume.data[*].arn
}
