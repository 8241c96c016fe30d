"""Model space: blocks, the YAML model builder, cost counting and search spaces."""
