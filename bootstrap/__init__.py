"""The pipeline's one-off AWS setup: GitHub's OIDC provider and each stack's deploy and preview roles."""
