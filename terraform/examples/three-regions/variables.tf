# Inputs of the three-region example. The required ones (no default) are the release, the
# certificates, who may connect, and the DNS name; terraform.tfvars.example shows them all.
# docs/deploy-aws.md walks through a deployment from `meridian certs` to `terraform apply`.

# ---------------------------------------------------------------------------------------------
# Required

variable "release_url" {
  description = "https:// or s3:// URL of the `meridian` release binary (or a .tar.gz holding it) every node installs; see packaging/README.md. An s3:// object must be readable from all three regions."
  type        = string
}

variable "release_sha256" {
  description = "SHA-256 (hex) of the file at release_url (`sha256sum meridian`)."
  type        = string
}

variable "tls_secrets" {
  description = "Per Meridian region (keys \"us-east\", \"eu-west\", \"ap-southeast\"): ARNs of the Secrets Manager secrets holding the PEM files of `meridian certs` (ca.pem, REGION/nodeN.pem and .key, wan-ca.pem, REGION/wan.pem and .key). Secrets are regional: create each region's in its own AWS region. upload-certs.sh writes this variable."
  type = map(object({
    ca_cert = string
    node_certs = list(object({
      cert = string
      key  = string
    }))
    wan_ca_cert = string
    wan_cert    = string
    wan_key     = string
  }))

  validation {
    condition     = alltrue([for r in ["us-east", "eu-west", "ap-southeast"] : contains(keys(var.tls_secrets), r)])
    error_message = "tls_secrets needs an entry for each of \"us-east\", \"eu-west\" and \"ap-southeast\"."
  }
}

variable "allowed_client_cidrs" {
  description = "IPv4 CIDRs of the clients (and operators) allowed to reach the HTTP API on the regional load balancers and the nodes."
  type        = list(string)
}

variable "route53_zone_id" {
  description = "Id of the existing public Route 53 hosted zone that api_domain_name belongs to."
  type        = string
}

variable "api_domain_name" {
  description = "DNS name clients use, e.g. \"kv.example.com\": latency-based records send each client to the nearest healthy region. Each region also gets REGION.api_domain_name (e.g. \"eu-west.kv.example.com\")."
  type        = string
}

# ---------------------------------------------------------------------------------------------
# Optional

variable "name_prefix" {
  description = "Prefix of every AWS resource name."
  type        = string
  default     = "meridian"
}

variable "vpc_cidrs" {
  description = "VPC CIDR of each Meridian region; they must not overlap (the regions are connected by VPC peering)."
  type        = map(string)
  default = {
    "us-east"      = "10.10.0.0/16"
    "eu-west"      = "10.20.0.0/16"
    "ap-southeast" = "10.30.0.0/16"
  }

  validation {
    condition     = alltrue([for r in ["us-east", "eu-west", "ap-southeast"] : contains(keys(var.vpc_cidrs), r)])
    error_message = "vpc_cidrs needs an entry for each of \"us-east\", \"eu-west\" and \"ap-southeast\"."
  }
}

variable "availability_zone_count" {
  description = "Availability zones per region (the nodes are spread across them)."
  type        = number
  default     = 3
}

variable "node_count" {
  description = "Nodes per region (node1..nodeN): at least the replication factor."
  type        = number
  default     = 3
}

variable "instance_type" {
  description = "EC2 instance type of the nodes."
  type        = string
  default     = "m6i.large"
}

variable "cpu_architecture" {
  description = "Architecture of the instances and of the release binary: \"x86_64\" or \"arm64\"."
  type        = string
  default     = "x86_64"
}

variable "data_volume" {
  description = "Data volume of each node (gp3): size_gb, iops, throughput_mbs."
  type = object({
    size_gb        = optional(number, 100)
    iops           = optional(number, 3000)
    throughput_mbs = optional(number, 125)
  })
  default = {}
}

variable "cluster_settings" {
  description = "Node configuration tunables, passed to every region (see the region module's variable of the same name; defaults are the production template's)."
  type        = any
  default     = {}
}

variable "keyspaces" {
  description = "Keyspaces declared on every node (as in config/examples/production-template.toml)."
  type = list(object({
    name        = string
    type        = string
    consistency = optional(string)
  }))
  default = [
    { name = "sessions", type = "lww" },
    { name = "carts", type = "mvr", consistency = "quorum" },
    { name = "page_views", type = "counter", consistency = "one" },
    { name = "tags", type = "set" },
  ]
}

variable "secrets_kms_key_arns" {
  description = "Per Meridian region, the customer-managed KMS key its TLS secrets are encrypted with (omit a region whose secrets use aws/secretsmanager)."
  type        = map(string)
  default     = {}
}

variable "api_tls_certificate_arns" {
  description = "Per Meridian region, an ACM certificate (in that AWS region, valid for api_domain_name and REGION.api_domain_name) for a TLS listener on its load balancer. Omit a region for a TCP listener passing TLS through to the nodes' own HTTPS (tls_secrets api_cert, or the node certificates)."
  type        = map(string)
  default     = {}
}

variable "api_tokens" {
  description = "Bearer tokens of the client API, the same in every region: name, sha256 (never the token itself; `meridian token create --name NAME --scopes read,write` prints both), scopes (read | write | admin), optionally rate_per_sec and burst. The nodes refuse to start with no token."
  type = list(object({
    name         = string
    sha256       = string
    scopes       = list(string)
    rate_per_sec = optional(number)
    burst        = optional(number)
  }))
}

variable "dns_drained_regions" {
  description = "Meridian regions to take out of DNS (their Route 53 health check is inverted, so it reports unhealthy while the region is up): for failover drills and maintenance. Fencing a region (POST /api/v1/regions/{name}/fence) does not change /healthz, so drain it here too."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.dns_drained_regions : contains(["us-east", "eu-west", "ap-southeast"], r)])
    error_message = "dns_drained_regions may only name \"us-east\", \"eu-west\" and \"ap-southeast\"."
  }
}

variable "health_check_interval_secs" {
  description = "Route 53 health check interval: 10 (fast failover, costs more) or 30."
  type        = number
  default     = 10

  validation {
    condition     = contains([10, 30], var.health_check_interval_secs)
    error_message = "health_check_interval_secs must be 10 or 30."
  }
}

variable "enable_ssm" {
  description = "Session Manager access to the nodes (no SSH keys, no public IPs)."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Deletion protection on the load balancers; turn off before `terraform destroy`."
  type        = bool
  default     = true
}

variable "backup" {
  description = "AWS Backup of the data volumes in each region (enabled, schedule, retention_days below the GC grace)."
  type = object({
    enabled        = optional(bool, true)
    schedule       = optional(string, "cron(0 3 * * ? *)")
    retention_days = optional(number, 7)
  })
  default = {}
}

variable "log_level" {
  description = "telemetry.log_level of every node."
  type        = string
  default     = "info"
}

variable "otlp_endpoint" {
  description = "telemetry.otlp_endpoint of every node (e.g. a collector agent on each node, \"http://127.0.0.1:4317\"); null disables span export."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource (provider default_tags)."
  type        = map(string)
  default = {
    Project = "meridian"
  }
}
