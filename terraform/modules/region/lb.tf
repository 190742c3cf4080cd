# The client load balancer: a Network Load Balancer, TCP http_port passed through to the nodes'
# HTTPS API (or TLS with an ACM certificate, re-encrypted to the nodes), health-checked on
# GET /healthz over HTTPS (200 when the node serves, 503 while it starts or shuts down; no token
# needed). Its security group limits who may connect.
#
# Not behind the load balancer: intra-region RPC (node to node) and the WAN (node to node
# across regions, over private connectivity to the fixed node addresses).

locals {
  # Load balancer and target group names are limited to 32 characters.
  lb_name = "${trimsuffix(substr(local.name, 0, 27), "-")}-api"
  tg_name = "${trimsuffix(substr(local.name, 0, 26), "-")}-http"
  api_tls = var.api_tls_certificate_arn != null
}

resource "aws_lb" "api" {
  #checkov:skip=CKV_AWS_91:A Network Load Balancer writes access logs only for TLS listeners; they are enabled with lb_access_logs_bucket (and api_tls_certificate_arn), and the VPC flow logs of this module record every connection either way.
  name                             = local.lb_name
  load_balancer_type               = "network"
  internal                         = var.lb_internal
  subnets                          = var.lb_internal ? aws_subnet.private[*].id : aws_subnet.public[*].id
  security_groups                  = [aws_security_group.lb.id]
  ip_address_type                  = "ipv4"
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.lb_access_logs_bucket == null ? [] : [var.lb_access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = "meridian/${var.region_name}"
      enabled = true
    }
  }

  tags = merge(local.common_tags, { Name = local.lb_name })

  # An internal load balancer's interfaces must not take a node's fixed address.
  depends_on = [aws_ec2_subnet_cidr_reservation.nodes]
}

resource "aws_lb_target_group" "api" {
  name                 = local.tg_name
  port                 = var.http_port
  protocol             = local.api_tls ? "TLS" : "TCP"
  target_type          = "instance"
  vpc_id               = aws_vpc.this.id
  deregistration_delay = 30

  health_check {
    enabled             = true
    protocol            = "HTTPS"
    port                = "traffic-port"
    path                = "/healthz"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 3
    unhealthy_threshold = 2
  }

  tags = merge(local.common_tags, { Name = local.tg_name })
}

resource "aws_lb_target_group_attachment" "api" {
  count = var.node_count

  target_group_arn = aws_lb_target_group.api.arn
  target_id        = aws_instance.node[count.index].id
  port             = var.http_port
}

resource "aws_lb_listener" "api" {
  load_balancer_arn = aws_lb.api.arn
  port              = var.http_port
  protocol          = local.api_tls ? "TLS" : "TCP"
  certificate_arn   = var.api_tls_certificate_arn
  ssl_policy        = local.api_tls ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  tags = local.common_tags
}
