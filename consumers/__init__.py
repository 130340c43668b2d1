"""Lambda handlers on the Kinesis event source. Each is a few lines: decode with Powertools'
batch utility, call the domain, answer with Lambda's partial batch response."""
