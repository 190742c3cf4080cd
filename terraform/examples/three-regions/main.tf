# Three Meridian regions on AWS, full mesh:
#
#   us-east      (us-east-1)       10.10.0.0/16
#   eu-west      (eu-west-1)       10.20.0.0/16
#   ap-southeast (ap-southeast-1)  10.30.0.0/16
#
# Each region is terraform/modules/region. The regions replicate over inter-region VPC
# peering (peering.tf) to each other's fixed node addresses: every region's wan_peers are the
# other two modules' wan_endpoints outputs, and its wan_peer_cidrs their VPC CIDRs. Clients
# use one name with Route 53 latency-based records and health checks (dns.tf): the nearest
# healthy region answers, and a region that fails its health checks drops out of DNS.

locals {
  aws_regions = {
    "us-east"      = "us-east-1"
    "eu-west"      = "eu-west-1"
    "ap-southeast" = "ap-southeast-1"
  }

  # Route 53 checks from these locations (at least three), and only their address ranges may
  # reach the load balancers besides allowed_client_cidrs.
  health_checker_regions = ["us-east-1", "eu-west-1", "ap-southeast-1"]
  health_check_cidrs     = sort(data.aws_ip_ranges.route53_healthchecks.cidr_blocks)

  # What every region has in common.
  common = {
    name_prefix             = var.name_prefix
    availability_zone_count = var.availability_zone_count
    node_count              = var.node_count
    instance_type           = var.instance_type
    cpu_architecture        = var.cpu_architecture
    data_volume             = var.data_volume
    release_url             = var.release_url
    release_sha256          = var.release_sha256
    allowed_client_cidrs    = var.allowed_client_cidrs
    cluster_settings        = var.cluster_settings
    keyspaces               = var.keyspaces
    enable_ssm              = var.enable_ssm
    deletion_protection     = var.deletion_protection
    backup                  = var.backup
    log_level               = var.log_level
    otlp_endpoint           = var.otlp_endpoint
  }
}

data "aws_ip_ranges" "route53_healthchecks" {
  provider = aws.us_east_1

  services = ["route53_healthchecks"]
  regions  = local.health_checker_regions
}

module "us_east" {
  source = "../../modules/region"
  providers = {
    aws = aws.us_east_1
  }

  region_name = "us-east"
  vpc_cidr    = var.vpc_cidrs["us-east"]

  wan_peer_cidrs = [var.vpc_cidrs["eu-west"], var.vpc_cidrs["ap-southeast"]]
  wan_peers = [
    { region = "eu-west", addresses = module.eu_west.wan_endpoints },
    { region = "ap-southeast", addresses = module.ap_southeast.wan_endpoints },
  ]

  tls_secrets             = var.tls_secrets["us-east"]
  secrets_kms_key_arn     = lookup(var.secrets_kms_key_arns, "us-east", null)
  api_tls_certificate_arn = lookup(var.api_tls_certificate_arns, "us-east", null)
  api_tokens              = var.api_tokens
  lb_internal             = false
  health_check_cidrs      = local.health_check_cidrs

  name_prefix             = local.common.name_prefix
  availability_zone_count = local.common.availability_zone_count
  node_count              = local.common.node_count
  instance_type           = local.common.instance_type
  cpu_architecture        = local.common.cpu_architecture
  data_volume             = local.common.data_volume
  release_url             = local.common.release_url
  release_sha256          = local.common.release_sha256
  allowed_client_cidrs    = local.common.allowed_client_cidrs
  cluster_settings        = local.common.cluster_settings
  keyspaces               = local.common.keyspaces
  enable_ssm              = local.common.enable_ssm
  deletion_protection     = local.common.deletion_protection
  backup                  = local.common.backup
  log_level               = local.common.log_level
  otlp_endpoint           = local.common.otlp_endpoint
}

module "eu_west" {
  source = "../../modules/region"
  providers = {
    aws = aws.eu_west_1
  }

  region_name = "eu-west"
  vpc_cidr    = var.vpc_cidrs["eu-west"]

  wan_peer_cidrs = [var.vpc_cidrs["us-east"], var.vpc_cidrs["ap-southeast"]]
  wan_peers = [
    { region = "us-east", addresses = module.us_east.wan_endpoints },
    { region = "ap-southeast", addresses = module.ap_southeast.wan_endpoints },
  ]

  tls_secrets             = var.tls_secrets["eu-west"]
  secrets_kms_key_arn     = lookup(var.secrets_kms_key_arns, "eu-west", null)
  api_tls_certificate_arn = lookup(var.api_tls_certificate_arns, "eu-west", null)
  api_tokens              = var.api_tokens
  lb_internal             = false
  health_check_cidrs      = local.health_check_cidrs

  name_prefix             = local.common.name_prefix
  availability_zone_count = local.common.availability_zone_count
  node_count              = local.common.node_count
  instance_type           = local.common.instance_type
  cpu_architecture        = local.common.cpu_architecture
  data_volume             = local.common.data_volume
  release_url             = local.common.release_url
  release_sha256          = local.common.release_sha256
  allowed_client_cidrs    = local.common.allowed_client_cidrs
  cluster_settings        = local.common.cluster_settings
  keyspaces               = local.common.keyspaces
  enable_ssm              = local.common.enable_ssm
  deletion_protection     = local.common.deletion_protection
  backup                  = local.common.backup
  log_level               = local.common.log_level
  otlp_endpoint           = local.common.otlp_endpoint
}

module "ap_southeast" {
  source = "../../modules/region"
  providers = {
    aws = aws.ap_southeast_1
  }

  region_name = "ap-southeast"
  vpc_cidr    = var.vpc_cidrs["ap-southeast"]

  wan_peer_cidrs = [var.vpc_cidrs["us-east"], var.vpc_cidrs["eu-west"]]
  wan_peers = [
    { region = "us-east", addresses = module.us_east.wan_endpoints },
    { region = "eu-west", addresses = module.eu_west.wan_endpoints },
  ]

  tls_secrets             = var.tls_secrets["ap-southeast"]
  secrets_kms_key_arn     = lookup(var.secrets_kms_key_arns, "ap-southeast", null)
  api_tls_certificate_arn = lookup(var.api_tls_certificate_arns, "ap-southeast", null)
  api_tokens              = var.api_tokens
  lb_internal             = false
  health_check_cidrs      = local.health_check_cidrs

  name_prefix             = local.common.name_prefix
  availability_zone_count = local.common.availability_zone_count
  node_count              = local.common.node_count
  instance_type           = local.common.instance_type
  cpu_architecture        = local.common.cpu_architecture
  data_volume             = local.common.data_volume
  release_url             = local.common.release_url
  release_sha256          = local.common.release_sha256
  allowed_client_cidrs    = local.common.allowed_client_cidrs
  cluster_settings        = local.common.cluster_settings
  keyspaces               = local.common.keyspaces
  enable_ssm              = local.common.enable_ssm
  deletion_protection     = local.common.deletion_protection
  backup                  = local.common.backup
  log_level               = local.common.log_level
  otlp_endpoint           = local.common.otlp_endpoint
}
