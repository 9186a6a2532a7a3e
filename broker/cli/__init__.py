"""The `kubetray` command line: parser, one module per command group, doctor, completion."""
