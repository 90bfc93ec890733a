"""Lambda code for agent-infra, packaged as one importable package.

The same imports work in Lambda (the package sits at the archive root) and in the tests.
"""
