"""The `profilestream` command's subcommands, one module each. Each module has
`register(subcommands)`, which adds its parser and sets `run(args, settings) -> exit code` as the
parser's `run` default."""
