terraform {
  # optional() object attributes with defaults (1.3), check blocks and
  # preconditions (1.5).
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Security groups on Network Load Balancers and the aws_vpc_security_group_*_rule
      # resources need a 5.x provider.
      version = ">= 5.40, < 7.0"
    }
  }
}
