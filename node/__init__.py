"""The node: HTTP entry point, configuration, database and domain of a mutual-aid server."""
