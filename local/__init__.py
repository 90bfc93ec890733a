"""Running agent-infra on this machine, without AWS or the Pulumi CLI."""
