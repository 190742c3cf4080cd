# Security groups. Ingress to the nodes:
#
# | port                | protocol | from                                              |
# |---------------------|----------|---------------------------------------------------|
# | rpc_port (7000)     | UDP      | the VPC CIDR only (intra-region RPC and gossip)    |
# | wan_port (7100)     | UDP      | wan_peer_cidrs only (the other regions)           |
# | http_port (8080)    | TCP      | allowed_client_cidrs, and the client load balancer |
#
# The load balancer's own group admits http_port from allowed_client_cidrs and
# health_check_cidrs (Route 53 health checkers). Egress from the nodes: the RPC port inside
# the VPC, the WAN port to the peers, and HTTPS/HTTP out through NAT (release download,
# Secrets Manager, Debian packages). No rule uses 0.0.0.0/0 for the RPC or WAN port.

resource "aws_security_group" "node" {
  name        = "${local.name}-node"
  description = "Meridian nodes of region ${var.region_name}"
  vpc_id      = aws_vpc.this.id

  tags = merge(local.common_tags, { Name = "${local.name}-node" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "node_rpc" {
  security_group_id = aws_security_group.node.id
  description       = "Intra-region RPC and gossip (QUIC) from inside the VPC"
  ip_protocol       = "udp"
  from_port         = var.rpc_port
  to_port           = var.rpc_port
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_ingress_rule" "node_wan" {
  for_each = toset(var.wan_peer_cidrs)

  security_group_id = aws_security_group.node.id
  description       = "Cross-region replication (QUIC) from a peer region"
  ip_protocol       = "udp"
  from_port         = var.wan_port
  to_port           = var.wan_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "node_http_clients" {
  for_each = toset(var.allowed_client_cidrs)

  security_group_id = aws_security_group.node.id
  description       = "HTTP API from allowed clients"
  ip_protocol       = "tcp"
  from_port         = var.http_port
  to_port           = var.http_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "node_http_lb" {
  security_group_id            = aws_security_group.node.id
  description                  = "HTTP API and /healthz checks from the client load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_egress_rule" "node_rpc" {
  security_group_id = aws_security_group.node.id
  description       = "Intra-region RPC and gossip (QUIC) to the other nodes"
  ip_protocol       = "udp"
  from_port         = var.rpc_port
  to_port           = var.rpc_port
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "node_wan" {
  for_each = toset(var.wan_peer_cidrs)

  security_group_id = aws_security_group.node.id
  description       = "Cross-region replication (QUIC) to a peer region"
  ip_protocol       = "udp"
  from_port         = var.wan_port
  to_port           = var.wan_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "node_https" {
  security_group_id = aws_security_group.node.id
  description       = "HTTPS out through NAT: release download, Secrets Manager, S3, packages"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "node_http_packages" {
  security_group_id = aws_security_group.node.id
  description       = "HTTP out through NAT: Debian package mirrors (apt verifies signatures)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

# ---------------------------------------------------------------------------------------------
# The client load balancer

resource "aws_security_group" "lb" {
  name        = "${local.name}-lb"
  description = "Client load balancer of Meridian region ${var.region_name}"
  vpc_id      = aws_vpc.this.id

  tags = merge(local.common_tags, { Name = "${local.name}-lb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "lb_clients" {
  for_each = toset(distinct(concat(var.allowed_client_cidrs, var.health_check_cidrs)))

  security_group_id = aws_security_group.lb.id
  description       = "HTTP API from allowed clients and health checkers"
  ip_protocol       = "tcp"
  from_port         = var.http_port
  to_port           = var.http_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "lb_nodes" {
  security_group_id            = aws_security_group.lb.id
  description                  = "Client traffic and /healthz checks to the nodes"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.node.id
}
