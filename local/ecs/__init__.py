"""The local emulation of one AWS service (see its modules)."""
