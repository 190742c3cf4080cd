# The region's network: a VPC with a private subnet (nodes) and a public subnet (NAT gateway,
# internet-facing load balancer) in each availability zone, NAT for the nodes' outbound
# HTTPS, a locked default security group, and VPC flow logs to an encrypted log group.
#
# Subnet plan for a /16 (newbits 4): private subnets are the first /20s (10.x.0.0/20,
# 10.x.16.0/20, ...), public subnets start at the 9th /20 (10.x.128.0/20, ...). In each
# private subnet the second /27 (10.x.0.32/27, ...) is reserved for explicit assignment
# (AWS never hands it out to load balancer or other interfaces); node i gets the fixed
# address i / zones of that block in the subnet of zone i % zones: 10.x.0.32, 10.x.16.32, ...

# The zones are named, never "the first N available": a zone that becomes impaired or a new
# zone must not shift the subnets (and so the nodes and their volumes) to other zones.
locals {
  zone_names = (
    var.availability_zones != null
    ? slice(var.availability_zones, 0, var.availability_zone_count)
    : [for letter in slice(["a", "b", "c", "d", "e", "f"], 0, var.availability_zone_count) : "${local.aws_region}${letter}"]
  )
}

data "aws_availability_zones" "selected" {
  filter {
    name   = "zone-name"
    values = local.zone_names
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == length(local.zone_names)
      error_message = "Not every availability zone in ${join(", ", local.zone_names)} exists in this account and region: set availability_zones."
    }
  }
}

locals {
  # Through the data source, so that nothing is created before the zones are checked.
  azs                  = [for z in local.zone_names : z if contains(data.aws_availability_zones.selected.names, z)]
  private_subnet_cidrs = [for i in range(var.availability_zone_count) : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnet_cidrs  = [for i in range(var.availability_zone_count) : cidrsubnet(var.vpc_cidr, 4, 8 + i)]
  node_ip_blocks       = [for c in local.private_subnet_cidrs : cidrsubnet(c, 27 - tonumber(split("/", c)[1]), 1)]
  nat_gateway_count    = var.single_nat_gateway ? 1 : var.availability_zone_count
  name                 = "${var.name_prefix}-${var.region_name}"
  common_tags = merge(var.tags, {
    "meridian:region" = var.region_name
    ManagedBy         = "terraform"
  })
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(local.common_tags, { Name = local.name })
}

# Nothing may use the default security group: it denies everything.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(local.common_tags, { Name = "${local.name}-default-deny" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(local.common_tags, { Name = local.name })
}

resource "aws_subnet" "private" {
  count = var.availability_zone_count

  vpc_id                  = aws_vpc.this.id
  cidr_block              = local.private_subnet_cidrs[count.index]
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = false

  tags = merge(local.common_tags, {
    Name            = "${local.name}-private-${local.azs[count.index]}"
    "meridian:tier" = "private"
  })
}

# The nodes' fixed addresses: explicit assignment only.
resource "aws_ec2_subnet_cidr_reservation" "nodes" {
  count = var.availability_zone_count

  subnet_id        = aws_subnet.private[count.index].id
  cidr_block       = local.node_ip_blocks[count.index]
  reservation_type = "explicit"
  description      = "Meridian node addresses (fixed private IPs)"
}

resource "aws_subnet" "public" {
  count = var.availability_zone_count

  vpc_id            = aws_vpc.this.id
  cidr_block        = local.public_subnet_cidrs[count.index]
  availability_zone = local.azs[count.index]
  # Only the NAT gateways (Elastic IPs) and an internet-facing load balancer live here;
  # nothing gets a public address by default.
  map_public_ip_on_launch = false

  tags = merge(local.common_tags, {
    Name            = "${local.name}-public-${local.azs[count.index]}"
    "meridian:tier" = "public"
  })
}

resource "aws_eip" "nat" {
  count = local.nat_gateway_count

  domain = "vpc"

  tags = merge(local.common_tags, { Name = "${local.name}-nat-${local.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = local.nat_gateway_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id

  tags = merge(local.common_tags, { Name = "${local.name}-${local.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = merge(local.common_tags, { Name = "${local.name}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = var.availability_zone_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

# One private route table per zone (its own NAT gateway), so that routes to the peer regions
# (added by the caller: output private_route_table_ids) exist in every zone.
resource "aws_route_table" "private" {
  count = var.availability_zone_count

  vpc_id = aws_vpc.this.id

  tags = merge(local.common_tags, { Name = "${local.name}-private-${local.azs[count.index]}" })
}

resource "aws_route" "private_nat" {
  count = var.availability_zone_count

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
}

resource "aws_route_table_association" "private" {
  count = var.availability_zone_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# ---------------------------------------------------------------------------------------------
# VPC flow logs (all traffic, accepted and rejected) to CloudWatch Logs, encrypted with the
# region's key.

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = local.flow_log_group
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = aws_kms_key.this.arn

  tags = local.common_tags
}

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 60

  tags = merge(local.common_tags, { Name = local.name })
}
