# Inputs of one Meridian region on AWS. Every variable has a description and a type; the
# ones without a default are required. docs/deploy-aws.md walks through a deployment.

# ---------------------------------------------------------------------------------------------
# Identity

variable "region_name" {
  description = "Meridian region name (node.region): the same on every node of the region, and the name the other regions know it by (wan.peers[].region). [a-z0-9-], 1-63 characters, not ending with '-'. Not the AWS region: e.g. \"us-east\" deployed in us-east-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.region_name))
    error_message = "region_name must be [a-z0-9-], 1-63 characters, and must not start or end with '-'."
  }
}

variable "name_prefix" {
  description = "Prefix of every AWS resource name (and Name tag) of this region."
  type        = string
  default     = "meridian"

  validation {
    condition     = can(regex("^[a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be [a-z0-9-], 1-20 characters (load balancer names are limited to 32)."
  }
}

variable "tags" {
  description = "Tags added to every resource of the region."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Network

variable "vpc_cidr" {
  description = "IPv4 CIDR of the region's VPC, /16 to /20. Must not overlap the other regions' VPCs: the WAN travels over private connectivity (VPC peering or a transit gateway) between them."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR between /16 and /20."
  }
}

variable "availability_zone_count" {
  description = "Number of availability zones the subnets (and so the nodes, round-robin) are spread across."
  type        = number
  default     = 3

  validation {
    condition     = var.availability_zone_count >= 1 && var.availability_zone_count <= 6
    error_message = "availability_zone_count must be between 1 and 6."
  }
}

variable "availability_zones" {
  description = "Availability zone names to use, in order (at least availability_zone_count of them). Null: the AWS region's zones a, b, c, ... (as many as availability_zone_count). Zones are named explicitly so that the subnets never move."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null ? true : length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must not repeat a zone."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole VPC instead of one per availability zone (cheaper; outbound traffic of every zone then depends on one zone). Nodes need outbound HTTPS only at boot and for upgrades."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Days the VPC flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a CloudWatch Logs retention of at least one year (365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

# ---------------------------------------------------------------------------------------------
# Ports (the defaults are the production template's)

variable "http_port" {
  description = "TCP port of the HTTP API (http.listen) on the nodes and on the client load balancer."
  type        = number
  default     = 8080

  validation {
    condition     = var.http_port >= 1024 && var.http_port <= 65535
    error_message = "http_port must be between 1024 and 65535 (the service runs without privileges)."
  }
}

variable "rpc_port" {
  description = "UDP port of intra-region RPC and gossip (rpc.listen, QUIC). Reachable only from inside the VPC."
  type        = number
  default     = 7000

  validation {
    condition     = var.rpc_port >= 1024 && var.rpc_port <= 65535
    error_message = "rpc_port must be between 1024 and 65535."
  }
}

variable "wan_port" {
  description = "UDP port of cross-region replication (wan.listen, QUIC). Reachable only from wan_peer_cidrs."
  type        = number
  default     = 7100

  validation {
    condition     = var.wan_port >= 1024 && var.wan_port <= 65535
    error_message = "wan_port must be between 1024 and 65535."
  }
}

# ---------------------------------------------------------------------------------------------
# Who may connect

variable "allowed_client_cidrs" {
  description = "IPv4 CIDRs allowed to reach the HTTP API (TCP http_port), through the client load balancer and directly on the nodes (token-aware clients, `meridian ctl --node`). Note the API carries the admin endpoints too."
  type        = list(string)

  validation {
    condition     = length(var.allowed_client_cidrs) > 0 && alltrue([for c in var.allowed_client_cidrs : can(cidrnetmask(c))])
    error_message = "allowed_client_cidrs must list at least one IPv4 CIDR."
  }
}

variable "health_check_cidrs" {
  description = "Extra IPv4 CIDRs allowed to reach the client load balancer on http_port only, e.g. the Route 53 health checkers' ranges (the three-regions example passes them). Not allowed on the nodes directly."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.health_check_cidrs : can(cidrnetmask(c))])
    error_message = "health_check_cidrs must be IPv4 CIDRs."
  }
}

variable "wan_peer_cidrs" {
  description = "IPv4 CIDRs the other regions' WAN traffic comes from (UDP wan_port): their VPC CIDRs over VPC peering or a transit gateway, or the public addresses of their NAT gateways if you route the WAN through your own public endpoint. Never 0.0.0.0/0."
  type        = list(string)

  validation {
    condition = alltrue([
      for c in var.wan_peer_cidrs : can(cidrnetmask(c)) && !contains(["0.0.0.0/0", "::/0"], c) && tonumber(split("/", c)[1]) >= 8
    ])
    error_message = "wan_peer_cidrs must be IPv4 CIDRs of /8 or longer; 0.0.0.0/0 and ::/0 are refused."
  }
}

variable "wan_peers" {
  description = "The other regions (full mesh; never this region): Meridian region name, its WAN endpoints as \"host:port\" (the first is wan.peers[].address, the rest extra_addresses; the example passes the peer module's wan_endpoints output), and the name its WAN certificate is valid for (default \"<region>.wan.meridian\", as `meridian certs` issues). Empty for a single-region deployment."
  type = list(object({
    region      = string
    addresses   = list(string)
    server_name = optional(string)
  }))

  validation {
    condition     = alltrue([for p in var.wan_peers : length(p.addresses) > 0 && can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", p.region))])
    error_message = "Each wan_peers entry needs a valid region name and at least one address."
  }

  validation {
    condition     = length(distinct([for p in var.wan_peers : p.region])) == length(var.wan_peers)
    error_message = "wan_peers regions must be distinct."
  }
}

# ---------------------------------------------------------------------------------------------
# Nodes

variable "node_count" {
  description = "Number of nodes (fixed EC2 instances, each with its own data volume and a fixed private IP), spread round-robin over the zones; at least cluster_settings.replication_factor and at most 32 per zone. Node ids are node1..nodeN, as `meridian certs --region R=node1,...` names them."
  type        = number
  default     = 3

  validation {
    condition     = var.node_count >= 1 && var.node_count <= 64
    error_message = "node_count must be between 1 and 64."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the nodes (Nitro, EBS-optimized). Its architecture must match cpu_architecture and the release binary."
  type        = string
  default     = "m6i.large"
}

variable "cpu_architecture" {
  description = "CPU architecture of the instances, the AMI and the release binary: \"x86_64\" or \"arm64\"."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.cpu_architecture)
    error_message = "cpu_architecture must be \"x86_64\" or \"arm64\"."
  }
}

variable "ami_id" {
  description = "AMI of the nodes. Null: the newest official Debian 12 (bookworm) AMI for cpu_architecture, which matches the glibc of the release built in packaging/Dockerfile. A custom AMI must have cloud-init, systemd, curl and the AWS CLI (or apt to install it)."
  type        = string
  default     = null
}

variable "root_volume_size_gb" {
  description = "Size of the (encrypted gp3) root volume in GiB."
  type        = number
  default     = 20
}

variable "data_volume" {
  description = "The data volume of each node (EBS gp3, encrypted with the region's KMS key), mounted at /var/lib/meridian (storage.data_dir). It outlives its instance: a replaced instance gets the same volume back."
  type = object({
    size_gb        = optional(number, 100)
    iops           = optional(number, 3000)
    throughput_mbs = optional(number, 125)
  })
  default = {}

  validation {
    condition     = var.data_volume.size_gb >= 10 && var.data_volume.iops >= 3000 && var.data_volume.throughput_mbs >= 125
    error_message = "data_volume needs at least 10 GiB, 3000 IOPS and 125 MB/s (the gp3 baseline)."
  }
}

variable "enable_ssm" {
  description = "Attach AmazonSSMManagedInstanceCore to the node role and install the SSM agent, for shell access through Session Manager (the nodes have no SSH key and no public IP). Off: the instance profile can only read the TLS secrets (and the release object when it is on S3)."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Release and certificates

variable "release_url" {
  description = "Where the nodes download the `meridian` release: an https:// or s3:// URL of the binary itself or of a .tar.gz holding it at its top level (see packaging/README.md). An s3:// object is readable by the node role."
  type        = string

  validation {
    condition     = can(regex("^(https|s3)://[A-Za-z0-9._~:/?#@!$&()*+,;=%-]+$", var.release_url))
    error_message = "release_url must be an https:// or s3:// URL without quotes or spaces."
  }
}

variable "release_sha256" {
  description = "SHA-256 (hex) of the file at release_url; the node refuses to install anything else."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.release_sha256))
    error_message = "release_sha256 must be 64 lowercase hex digits (sha256sum's output)."
  }
}

variable "tls_secrets" {
  description = "ARNs of the AWS Secrets Manager secrets (SecretString = the PEM file) the nodes copy to /etc/meridian/tls with mode 0600: the intra-region CA (ca.pem), the node certificates and keys (node_certs: one entry shared by every node, or one per node in node order; `meridian certs` writes REGION/nodeN.pem and .key), the WAN CA (wan-ca.pem) and this region's WAN certificate and key (REGION/wan.pem, .key), and optionally the HTTPS certificate and key of the client API (api.pem, api.key: valid for the name clients use, e.g. the load balancer's DNS name; unset: the node certificate and key)."
  type = object({
    ca_cert = string
    node_certs = list(object({
      cert = string
      key  = string
    }))
    wan_ca_cert = string
    wan_cert    = string
    wan_key     = string
    api_cert    = optional(string)
    api_key     = optional(string)
  })

  validation {
    condition = alltrue([
      for arn in concat(
        [var.tls_secrets.ca_cert, var.tls_secrets.wan_ca_cert, var.tls_secrets.wan_cert, var.tls_secrets.wan_key],
        flatten([for n in var.tls_secrets.node_certs : [n.cert, n.key]]),
        compact([var.tls_secrets.api_cert, var.tls_secrets.api_key]),
      ) : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$", arn))
    ]) && length(var.tls_secrets.node_certs) > 0
    error_message = "tls_secrets must hold Secrets Manager secret ARNs, and node_certs at least one entry."
  }
}

variable "secrets_kms_key_arn" {
  description = "ARN of the customer-managed KMS key the TLS secrets are encrypted with; the node role gets kms:Decrypt on it through Secrets Manager only. Null when the secrets use the AWS-managed aws/secretsmanager key."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# Client load balancer

variable "lb_internal" {
  description = "Whether the client Network Load Balancer is internal (reachable from the VPC and what is connected to it) or internet-facing (in the public subnets; still limited to allowed_client_cidrs and health_check_cidrs by its security group). Route 53 health checks need an internet-facing load balancer."
  type        = bool
  default     = true
}

variable "api_tls_certificate_arn" {
  description = "ACM certificate (in this AWS region) for a TLS listener on the client load balancer: clients then speak HTTPS to the load balancer, which opens a TLS connection to the nodes' HTTPS API. Null: a plain TCP listener passing the clients' TLS through to the nodes (which serve HTTPS with tls_secrets.api_cert)."
  type        = string
  default     = null
}

variable "lb_access_logs_bucket" {
  description = "S3 bucket (in this AWS region, with the bucket policy Elastic Load Balancing needs) for the client load balancer's access logs. A Network Load Balancer writes access logs only for TLS listeners (api_tls_certificate_arn set). Null: none; the VPC flow logs record every connection."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Deletion protection on the client load balancer. Turn off before `terraform destroy`."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Backups

variable "backup" {
  description = "AWS Backup of the data volumes: enabled, schedule (AWS Backup cron expression, UTC) and retention in days, which must stay below storage.gc_grace_secs (cluster_settings.gc_grace_secs)."
  type = object({
    enabled        = optional(bool, true)
    schedule       = optional(string, "cron(0 3 * * ? *)")
    retention_days = optional(number, 7)
  })
  default = {}

  validation {
    condition     = var.backup.retention_days >= 1
    error_message = "backup.retention_days must be at least 1."
  }
}

# ---------------------------------------------------------------------------------------------
# Node configuration (rendered into /etc/meridian/node.toml; docs/configuration.md)

variable "cluster_settings" {
  description = "Tunables of the node configuration, defaulting to the production template's values (config/examples/production-template.toml; docs/configuration.md gives each key's bounds)."
  type = object({
    durability                  = optional(string, "sync")
    group_commit_interval_ms    = optional(number, 2)
    block_cache_bytes           = optional(number, 268435456)
    write_buffer_bytes          = optional(number, 67108864)
    gc_grace_secs               = optional(number, 864000)
    changelog_retention_entries = optional(number, 10000000)
    max_offset_ms               = optional(number, 500)
    replication_factor          = optional(number, 3)
    vnodes                      = optional(number, 256)
    default_consistency         = optional(string, "quorum")
    gossip_interval_ms          = optional(number, 200)
    phi_threshold               = optional(number, 16)
    rpc_timeout_ms              = optional(number, 2000)
    hint_window_secs            = optional(number, 10800)
    anti_entropy_interval_secs  = optional(number, 600)
    streaming_bytes_per_sec     = optional(number, 67108864)
    hint_replay_per_sec         = optional(number, 5000)
    max_body_bytes              = optional(number, 1572864)
    max_key_bytes               = optional(number, 256)
    max_value_bytes             = optional(number, 1048576)
    wan_batch_max_entries       = optional(number, 512)
    wan_batch_max_delay_ms      = optional(number, 20)
    wan_max_batches_in_flight   = optional(number, 8)
    wan_compression             = optional(string, "lz4")
  })
  default = {}

  validation {
    condition     = contains(["sync", "group", "none"], var.cluster_settings.durability) && contains(["one", "quorum", "all"], var.cluster_settings.default_consistency) && contains(["none", "lz4", "zstd"], var.cluster_settings.wan_compression)
    error_message = "cluster_settings: durability is sync|group|none, default_consistency one|quorum|all, wan_compression none|lz4|zstd."
  }

  validation {
    condition     = var.cluster_settings.hint_window_secs < var.cluster_settings.gc_grace_secs && var.cluster_settings.anti_entropy_interval_secs < var.cluster_settings.gc_grace_secs
    error_message = "cluster_settings: hint_window_secs and anti_entropy_interval_secs must be less than gc_grace_secs (no resurrection through late hints or repair)."
  }
}

variable "keyspaces" {
  description = "Keyspaces declared in the node configuration ([[keyspaces]]), besides the implicit \"default\" (lww). type: lww | mvr | counter | set; consistency (optional): one | quorum | all."
  type = list(object({
    name        = string
    type        = string
    consistency = optional(string)
  }))
  default = []

  validation {
    condition     = alltrue([for k in var.keyspaces : contains(["lww", "mvr", "counter", "set"], k.type) && (k.consistency == null ? true : contains(["one", "quorum", "all"], k.consistency))])
    error_message = "keyspaces: type must be lww|mvr|counter|set and consistency one|quorum|all."
  }
}

variable "api_tokens" {
  description = "Bearer tokens of the client API rendered into the node configuration ([[auth.tokens]]; docs/configuration.md): name, sha256 (the SHA-256 of the token, never the token: `meridian token create` prints both), scopes (read | write | admin), and optionally rate_per_sec and burst. Tokens may also (or only) come from api_tokens_secret."
  type = list(object({
    name         = string
    sha256       = string
    scopes       = list(string)
    rate_per_sec = optional(number)
    burst        = optional(number)
  }))
  default = []

  validation {
    condition     = alltrue([for t in var.api_tokens : can(regex("^[0-9a-fA-F]{64}$", t.sha256)) && length(t.scopes) > 0 && alltrue([for s in t.scopes : contains(["read", "write", "admin"], s)])])
    error_message = "api_tokens: sha256 must be 64 hex digits and scopes a non-empty list of read|write|admin."
  }
}

variable "api_tokens_secret" {
  description = "ARN of a Secrets Manager secret whose SecretString is a tokens file ([[tokens]] tables, as auth.tokens_file reads) the nodes copy to /etc/meridian/tokens.toml (mode 0600). Null: an empty tokens file, so api_tokens must hold at least one token (the node refuses to start with authentication on and no token)."
  type        = string
  default     = null

  validation {
    condition     = var.api_tokens_secret == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$", var.api_tokens_secret))
    error_message = "api_tokens_secret must be a Secrets Manager secret ARN or null."
  }
}

variable "log_level" {
  description = "telemetry.log_level: a tracing filter, e.g. \"info\" or \"info,meridian_region=debug\"."
  type        = string
  default     = "info"
}

variable "otlp_endpoint" {
  description = "telemetry.otlp_endpoint: OpenTelemetry collector URL (e.g. a collector agent on the node, \"http://127.0.0.1:4317\"). Null: no span export."
  type        = string
  default     = null
}
