# The nodes: a fixed set of EC2 instances (node1..nodeN), each with a fixed private IP and
# its own EBS data volume. Why not an autoscaling group: a Meridian node is stateful and its
# identity (node id, which determines its ring tokens and the node number stored in versions)
# belongs with its data. Here a replaced instance (`terraform apply -replace=...`, or a lost
# host) comes back with the same id, IP and volume, and the other nodes see the same node
# return; adding nodes is raising node_count (they join and stream, docs/operations.md).
#
# The seeds of a node are the private IPs of up to three other nodes, known at plan time, so
# no discovery permission is needed. Instances ignore later changes of the AMI and the user
# data: upgrades are rolling and explicit (docs/operations.md, "Rolling upgrade").

data "aws_ami" "debian" {
  count = var.ami_id == null ? 1 : 0

  most_recent = true
  owners      = ["136693071363"] # Debian cloud team

  filter {
    name   = "name"
    values = ["debian-12-${var.cpu_architecture == "arm64" ? "arm64" : "amd64"}-*"]
  }

  filter {
    name   = "architecture"
    values = [var.cpu_architecture]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  ami_id   = var.ami_id != null ? var.ami_id : data.aws_ami.debian[0].id
  data_dir = "/var/lib/meridian"
  tls_dir  = "/etc/meridian/tls"

  nodes = [for i in range(var.node_count) : {
    index    = i
    id       = "node${i + 1}"
    az_index = i % var.availability_zone_count
    ip       = cidrhost(local.node_ip_blocks[i % var.availability_zone_count], floor(i / var.availability_zone_count))
  }]

  settings = var.cluster_settings

  wan_peers = [for p in var.wan_peers : {
    region          = p.region
    address         = p.addresses[0]
    extra_addresses = slice(p.addresses, 1, length(p.addresses))
    server_name     = p.server_name != null ? p.server_name : "${p.region}.wan.meridian"
  }]

  node_configs = [for n in local.nodes : templatefile("${path.module}/templates/node.toml.tftpl", {
    node_id       = n.id
    region        = var.region_name
    data_dir      = local.data_dir
    tls_dir       = local.tls_dir
    settings      = local.settings
    phi_threshold = format("%.1f", local.settings.phi_threshold)
    seeds         = slice([for o in local.nodes : "${o.ip}:${var.rpc_port}" if o.id != n.id], 0, min(3, var.node_count - 1))
    http_listen   = "0.0.0.0:${var.http_port}"
    rpc_listen    = "0.0.0.0:${var.rpc_port}"
    wan_listen    = "0.0.0.0:${var.wan_port}"
    advertise     = "${n.ip}:${var.rpc_port}"
    wan_peers     = local.wan_peers
    keyspaces     = var.keyspaces
    api_tokens    = var.api_tokens
    log_level     = var.log_level
    otlp_endpoint = var.otlp_endpoint
  })]

  # One shared entry, or one per node (a wrong count is reported by the precondition below).
  node_certs = [for n in local.nodes : var.tls_secrets.node_certs[min(n.index, length(var.tls_secrets.node_certs) - 1)]]

  user_data = [for n in local.nodes : templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
    node_id          = n.id
    region           = var.region_name
    node_config      = local.node_configs[n.index]
    systemd_unit     = file("${path.module}/../../../packaging/systemd/meridian.service")
    install_script   = file("${path.module}/files/meridian-install.sh")
    bootstrap_script = file("${path.module}/files/meridian-bootstrap.sh")
    bootstrap_env = {
      MBOOT_AWS_REGION         = local.aws_region
      MBOOT_NODE_ID            = n.id
      MBOOT_REGION             = var.region_name
      MBOOT_ADVERTISE_IP       = n.ip
      MBOOT_DATA_VOLUME_ID     = aws_ebs_volume.data[n.index].id
      MBOOT_DATA_DIR           = local.data_dir
      MBOOT_TLS_DIR            = local.tls_dir
      MBOOT_HTTP_PORT          = tostring(var.http_port)
      MBOOT_RELEASE_URL        = var.release_url
      MBOOT_RELEASE_SHA256     = var.release_sha256
      MBOOT_SECRET_CA_CERT     = var.tls_secrets.ca_cert
      MBOOT_SECRET_NODE_CERT   = local.node_certs[n.index].cert
      MBOOT_SECRET_NODE_KEY    = local.node_certs[n.index].key
      MBOOT_SECRET_WAN_CA_CERT = var.tls_secrets.wan_ca_cert
      MBOOT_SECRET_WAN_CERT    = var.tls_secrets.wan_cert
      MBOOT_SECRET_WAN_KEY     = var.tls_secrets.wan_key
      MBOOT_SECRET_API_CERT    = coalesce(var.tls_secrets.api_cert, local.node_certs[n.index].cert)
      MBOOT_SECRET_API_KEY     = coalesce(var.tls_secrets.api_key, local.node_certs[n.index].key)
      MBOOT_SECRET_API_TOKENS  = coalesce(var.api_tokens_secret, "none")
      MBOOT_ENABLE_SSM         = var.enable_ssm ? "true" : "false"
      MBOOT_CPU_ARCH           = var.cpu_architecture
    }
  })]
}

resource "aws_ebs_volume" "data" {
  count = var.node_count

  availability_zone = local.azs[local.nodes[count.index].az_index]
  type              = "gp3"
  size              = var.data_volume.size_gb
  iops              = var.data_volume.iops
  throughput        = var.data_volume.throughput_mbs
  encrypted         = true
  kms_key_id        = aws_kms_key.this.arn
  # A last snapshot if the volume is ever destroyed (node_count lowered, terraform destroy).
  final_snapshot = true

  tags = merge(local.common_tags, {
    Name               = "${local.name}-${local.nodes[count.index].id}-data"
    "meridian:node-id" = local.nodes[count.index].id
    "meridian:role"    = "data"
  })
}

resource "aws_instance" "node" {
  count = var.node_count

  ami                         = local.ami_id
  instance_type               = var.instance_type
  subnet_id                   = aws_subnet.private[local.nodes[count.index].az_index].id
  private_ip                  = local.nodes[count.index].ip
  vpc_security_group_ids      = [aws_security_group.node.id]
  iam_instance_profile        = aws_iam_instance_profile.node.name
  associate_public_ip_address = false
  ebs_optimized               = true
  monitoring                  = true
  # gzip: the rendered cloud-init (with the embedded unit and scripts) is over 16 KiB raw;
  # cloud-init decompresses it.
  user_data_base64            = base64gzip(local.user_data[count.index])
  user_data_replace_on_change = false

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    kms_key_id            = aws_kms_key.this.arn
    delete_on_termination = true

    tags = merge(local.common_tags, {
      Name               = "${local.name}-${local.nodes[count.index].id}-root"
      "meridian:node-id" = local.nodes[count.index].id
    })
  }

  tags = merge(local.common_tags, {
    Name               = "${local.name}-${local.nodes[count.index].id}"
    "meridian:node-id" = local.nodes[count.index].id
  })

  # The fixed address must be reserved before anything else can take it.
  depends_on = [aws_ec2_subnet_cidr_reservation.nodes]

  lifecycle {
    ignore_changes = [ami, user_data_base64]

    precondition {
      condition     = var.node_count >= var.cluster_settings.replication_factor
      error_message = "node_count must be at least cluster_settings.replication_factor."
    }

    precondition {
      condition     = var.node_count <= 32 * var.availability_zone_count
      error_message = "At most 32 nodes per availability zone (the reserved /27 of each private subnet)."
    }

    precondition {
      condition     = length(var.tls_secrets.node_certs) == 1 || length(var.tls_secrets.node_certs) == var.node_count
      error_message = "tls_secrets.node_certs must have one entry (shared) or node_count entries (one per node)."
    }

    precondition {
      # 16384 bytes of (compressed) user data are 21848 characters of base64.
      condition     = length(base64gzip(local.user_data[count.index])) <= 21848
      error_message = "The compressed cloud-init user data is over EC2's 16 KiB limit."
    }
  }
}

resource "aws_volume_attachment" "data" {
  count = var.node_count

  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data[count.index].id
  instance_id = aws_instance.node[count.index].id
  # Detach only from a stopped instance, so that RocksDB is never cut off mid-write.
  stop_instance_before_detaching = true
}
