"""Data: the panel schema and checks, the embedded panel, SSB fetching and code vintages."""
