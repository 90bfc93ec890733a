"""The agent-infra policy pack (Pulumi CrossGuard) and the rules it shares with the program."""
