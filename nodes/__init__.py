"""Built-in node types, one family per module."""
