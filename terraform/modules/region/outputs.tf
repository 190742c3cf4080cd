# Outputs of one region. wan_endpoints and rpc_seeds are computed from the inputs only (the
# fixed node addresses), never from resource attributes: the regions' modules feed each other
# their WAN endpoints, and an output that depended on the instances would close a cycle
# (each region's user data would wait for the other regions' instances).

output "region_name" {
  description = "The Meridian region name (node.region)."
  value       = var.region_name
}

output "lb_dns_name" {
  description = "DNS name of the client Network Load Balancer (HTTP API on http_port)."
  value       = aws_lb.api.dns_name
}

output "lb_zone_id" {
  description = "Route 53 hosted zone id of the client load balancer, for alias records."
  value       = aws_lb.api.zone_id
}

output "lb_arn" {
  description = "ARN of the client load balancer."
  value       = aws_lb.api.arn
}

output "api_endpoint" {
  description = "The region's client endpoint, http(s)://LB:http_port (https when api_tls_certificate_arn is set)."
  value       = "${local.api_tls ? "https" : "http"}://${aws_lb.api.dns_name}:${var.http_port}"
}

output "api_protocol" {
  description = "Protocol of the client listener as Route 53 health checks name it: always HTTPS (TLS from the ACM listener, or the nodes' own HTTPS passed through)."
  value       = "HTTPS"
}

output "http_port" {
  description = "TCP port of the HTTP API."
  value       = var.http_port
}

output "security_group_ids" {
  description = "Security group ids: nodes and client load balancer."
  value = {
    node = aws_security_group.node.id
    lb   = aws_security_group.lb.id
  }
}

output "node_security_group_id" {
  description = "Security group of the nodes."
  value       = aws_security_group.node.id
}

output "lb_security_group_id" {
  description = "Security group of the client load balancer."
  value       = aws_security_group.lb.id
}

output "instance_ids" {
  description = "EC2 instance id of each node, by node id. (The nodes are a fixed set of instances, not an autoscaling group: see instances.tf.)"
  value       = { for n in local.nodes : n.id => aws_instance.node[n.index].id }
}

output "data_volume_ids" {
  description = "EBS data volume id of each node, by node id."
  value       = { for n in local.nodes : n.id => aws_ebs_volume.data[n.index].id }
}

output "node_private_ips" {
  description = "Fixed private IP of each node, by node id."
  value       = { for n in local.nodes : n.id => n.ip }
}

output "rpc_seeds" {
  description = "Intra-region RPC addresses (host:port) of every node: what `meridian server --join` takes."
  value       = [for n in local.nodes : "${n.ip}:${var.rpc_port}"]
}

output "wan_endpoints" {
  description = "The region's WAN endpoints (host:port, every node's wan.listen), for the other regions' wan_peers[].addresses. Reachable from wan_peer_cidrs over private connectivity."
  value       = [for n in local.nodes : "${n.ip}:${var.wan_port}"]
}

output "wan_server_name" {
  description = "The name this region's WAN certificate must be valid for (the peers' wan.peers[].server_name)."
  value       = "${var.region_name}.wan.meridian"
}

output "vpc_id" {
  description = "VPC id."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "VPC CIDR."
  value       = var.vpc_cidr
}

output "private_subnet_ids" {
  description = "Private subnet ids (nodes), one per availability zone."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Public subnet ids (NAT gateways, internet-facing load balancer), one per availability zone."
  value       = aws_subnet.public[*].id
}

output "private_route_table_ids" {
  description = "Private route table ids, one per availability zone, in zone order: add the routes to the peer regions here."
  value       = aws_route_table.private[*].id
}

output "nat_public_ips" {
  description = "Public IPs of the NAT gateways: the nodes' source address on the internet (for peers that filter WAN traffic arriving over the internet)."
  value       = aws_eip.nat[*].public_ip
}

output "kms_key_arn" {
  description = "The region's KMS key (EBS, flow logs, backups)."
  value       = aws_kms_key.this.arn
}

output "flow_log_group_name" {
  description = "CloudWatch Logs group of the VPC flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.name
}

output "backup_vault_name" {
  description = "AWS Backup vault of the data-volume snapshots (null when backup is disabled)."
  value       = var.backup.enabled ? aws_backup_vault.this[0].name : null
}
