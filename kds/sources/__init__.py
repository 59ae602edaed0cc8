"""Source adapters: one module per POS, each thin glue to the service core."""
