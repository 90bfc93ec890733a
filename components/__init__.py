"""Pulumi ComponentResources of agent-infra, one per module, and the pure builders they share."""
