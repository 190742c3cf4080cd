output "api_url" {
  description = "The global client URL: the nearest healthy region (Route 53 latency routing)."
  value       = "${module.us_east.api_protocol == "HTTPS" ? "https" : "http"}://${var.api_domain_name}:${module.us_east.http_port}"
}

output "region_api_urls" {
  description = "Per region: the URL of that region only (REGION.api_domain_name)."
  value = {
    for name, m in local.region_endpoints :
    name => "${m.api_protocol == "HTTPS" ? "https" : "http"}://${name}.${var.api_domain_name}:${m.http_port}"
  }
}

output "lb_dns_names" {
  description = "Per region: the client load balancer's DNS name."
  value       = { for name, m in local.region_endpoints : name => m.lb_dns_name }
}

output "wan_endpoints" {
  description = "Per region: its WAN endpoints (host:port), as the other regions' [[wan.peers]] list them."
  value       = { for name, m in local.regions : name => m.wan_endpoints }
}

output "node_private_ips" {
  description = "Per region: node id => private IP (for `meridian ctl --node IP:8080` from an allowed network)."
  value       = { for name, m in local.regions : name => m.node_private_ips }
}

output "instance_ids" {
  description = "Per region: node id => EC2 instance id."
  value       = { for name, m in local.regions : name => m.instance_ids }
}

output "security_group_ids" {
  description = "Per region: the node and load balancer security group ids."
  value       = { for name, m in local.regions : name => m.security_group_ids }
}

output "health_check_ids" {
  description = "Per region: the Route 53 health check id (its status is the region's DNS health)."
  value       = { for name, hc in aws_route53_health_check.region : name => hc.id }
}
