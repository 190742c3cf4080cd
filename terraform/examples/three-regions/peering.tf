# Inter-region VPC peering, full mesh, and the routes to the peers in every private route
# table. The WAN (UDP wan_port, QUIC with mutual TLS) travels over these links to the peers'
# fixed node addresses; the nodes' security groups admit it only from the peer VPC CIDRs.
# Peering does not carry traffic transitively, hence one connection per pair.

resource "aws_vpc_peering_connection" "us_east_eu_west" {
  provider = aws.us_east_1

  vpc_id      = module.us_east.vpc_id
  peer_vpc_id = module.eu_west.vpc_id
  peer_region = local.aws_regions["eu-west"]
  auto_accept = false

  tags = { Name = "${var.name_prefix}-us-east-eu-west" }
}

resource "aws_vpc_peering_connection_accepter" "us_east_eu_west" {
  provider = aws.eu_west_1

  vpc_peering_connection_id = aws_vpc_peering_connection.us_east_eu_west.id
  auto_accept               = true

  tags = { Name = "${var.name_prefix}-us-east-eu-west" }
}

resource "aws_vpc_peering_connection" "us_east_ap_southeast" {
  provider = aws.us_east_1

  vpc_id      = module.us_east.vpc_id
  peer_vpc_id = module.ap_southeast.vpc_id
  peer_region = local.aws_regions["ap-southeast"]
  auto_accept = false

  tags = { Name = "${var.name_prefix}-us-east-ap-southeast" }
}

resource "aws_vpc_peering_connection_accepter" "us_east_ap_southeast" {
  provider = aws.ap_southeast_1

  vpc_peering_connection_id = aws_vpc_peering_connection.us_east_ap_southeast.id
  auto_accept               = true

  tags = { Name = "${var.name_prefix}-us-east-ap-southeast" }
}

resource "aws_vpc_peering_connection" "eu_west_ap_southeast" {
  provider = aws.eu_west_1

  vpc_id      = module.eu_west.vpc_id
  peer_vpc_id = module.ap_southeast.vpc_id
  peer_region = local.aws_regions["ap-southeast"]
  auto_accept = false

  tags = { Name = "${var.name_prefix}-eu-west-ap-southeast" }
}

resource "aws_vpc_peering_connection_accepter" "eu_west_ap_southeast" {
  provider = aws.ap_southeast_1

  vpc_peering_connection_id = aws_vpc_peering_connection.eu_west_ap_southeast.id
  auto_accept               = true

  tags = { Name = "${var.name_prefix}-eu-west-ap-southeast" }
}

locals {
  # The (accepted) peering connection between each pair, seen from either side.
  peering = {
    "us-east" = {
      "eu-west"      = aws_vpc_peering_connection_accepter.us_east_eu_west.id
      "ap-southeast" = aws_vpc_peering_connection_accepter.us_east_ap_southeast.id
    }
    "eu-west" = {
      "us-east"      = aws_vpc_peering_connection_accepter.us_east_eu_west.id
      "ap-southeast" = aws_vpc_peering_connection_accepter.eu_west_ap_southeast.id
    }
    "ap-southeast" = {
      "us-east" = aws_vpc_peering_connection_accepter.us_east_ap_southeast.id
      "eu-west" = aws_vpc_peering_connection_accepter.eu_west_ap_southeast.id
    }
  }

  # One route per (peer, private route table), keyed "PEER/ZONE_INDEX" (known at plan time).
  peer_routes = {
    for region, peers in local.peering : region => {
      for pair in setproduct(keys(peers), range(var.availability_zone_count)) : "${pair[0]}/${pair[1]}" => {
        peer       = pair[0]
        zone_index = pair[1]
      }
    }
  }
}

resource "aws_route" "us_east_to_peers" {
  provider = aws.us_east_1
  for_each = local.peer_routes["us-east"]

  route_table_id            = module.us_east.private_route_table_ids[each.value.zone_index]
  destination_cidr_block    = var.vpc_cidrs[each.value.peer]
  vpc_peering_connection_id = local.peering["us-east"][each.value.peer]
}

resource "aws_route" "eu_west_to_peers" {
  provider = aws.eu_west_1
  for_each = local.peer_routes["eu-west"]

  route_table_id            = module.eu_west.private_route_table_ids[each.value.zone_index]
  destination_cidr_block    = var.vpc_cidrs[each.value.peer]
  vpc_peering_connection_id = local.peering["eu-west"][each.value.peer]
}

resource "aws_route" "ap_southeast_to_peers" {
  provider = aws.ap_southeast_1
  for_each = local.peer_routes["ap-southeast"]

  route_table_id            = module.ap_southeast.private_route_table_ids[each.value.zone_index]
  destination_cidr_block    = var.vpc_cidrs[each.value.peer]
  vpc_peering_connection_id = local.peering["ap-southeast"][each.value.peer]
}
