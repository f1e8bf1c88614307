"""`opsflow`: start, follow and list Opsflow runs from a terminal, against a deployed stack's API or the
embedded local app (`opsflow local`)."""
