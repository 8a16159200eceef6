"""Subcommand groups of the `camel-bot` command line, one module per group.

Each module exposes `register(subparsers)`, which adds its subcommands and sets
`func=handler` on each; a handler takes the parsed `argparse.Namespace` and returns
an exit status.
"""
