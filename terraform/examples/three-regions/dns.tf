# Nearest-region routing and failover with Route 53: one latency-based alias record per
# region for api_domain_name, each tied to a health check of that region's load balancer
# (GET /healthz). Route 53 answers with the lowest-latency region whose check passes; when a
# region fails (or is drained with dns_drained_regions) clients resolve to the next nearest.
# The alias also evaluates the load balancer's own target health, so a region whose nodes
# are all unhealthy drops out even between health-check rounds. Each region also gets a
# plain record, REGION.api_domain_name, for clients and operators who want that region.

locals {
  region_endpoints = {
    "us-east" = {
      lb_dns_name  = module.us_east.lb_dns_name
      lb_zone_id   = module.us_east.lb_zone_id
      http_port    = module.us_east.http_port
      api_protocol = module.us_east.api_protocol
    }
    "eu-west" = {
      lb_dns_name  = module.eu_west.lb_dns_name
      lb_zone_id   = module.eu_west.lb_zone_id
      http_port    = module.eu_west.http_port
      api_protocol = module.eu_west.api_protocol
    }
    "ap-southeast" = {
      lb_dns_name  = module.ap_southeast.lb_dns_name
      lb_zone_id   = module.ap_southeast.lb_zone_id
      http_port    = module.ap_southeast.http_port
      api_protocol = module.ap_southeast.api_protocol
    }
  }

  regions = {
    "us-east"      = module.us_east
    "eu-west"      = module.eu_west
    "ap-southeast" = module.ap_southeast
  }
}

resource "aws_route53_health_check" "region" {
  provider = aws.us_east_1
  for_each = local.region_endpoints

  fqdn               = each.value.lb_dns_name
  port               = each.value.http_port
  type               = each.value.api_protocol
  resource_path      = "/healthz"
  request_interval   = var.health_check_interval_secs
  failure_threshold  = 3
  measure_latency    = true
  regions            = local.health_checker_regions
  invert_healthcheck = contains(var.dns_drained_regions, each.key)

  tags = { Name = "${var.name_prefix}-${each.key}-api" }
}

resource "aws_route53_record" "api_latency" {
  #checkov:skip=CKV2_AWS_23:False positive: the alias target is the region module's aws_lb.api (module.REGION.lb_dns_name via for_each over local.region_endpoints), which this graph check does not follow through for_each.
  provider = aws.us_east_1
  for_each = local.region_endpoints

  zone_id         = var.route53_zone_id
  name            = var.api_domain_name
  type            = "A"
  set_identifier  = each.key
  health_check_id = aws_route53_health_check.region[each.key].id

  latency_routing_policy {
    region = local.aws_regions[each.key]
  }

  alias {
    name                   = each.value.lb_dns_name
    zone_id                = each.value.lb_zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "api_region" {
  #checkov:skip=CKV2_AWS_23:False positive: the alias target is the region module's aws_lb.api (module.REGION.lb_dns_name via for_each over local.region_endpoints), which this graph check does not follow through for_each.
  provider = aws.us_east_1
  for_each = local.region_endpoints

  zone_id = var.route53_zone_id
  name    = "${each.key}.${var.api_domain_name}"
  type    = "A"

  alias {
    name                   = each.value.lb_dns_name
    zone_id                = each.value.lb_zone_id
    evaluate_target_health = true
  }
}
