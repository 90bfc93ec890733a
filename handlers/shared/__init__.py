"""Code shared by every handler: the table's key design, the state access layer, ids."""
