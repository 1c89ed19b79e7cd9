"""``python -m distillwarden``: the same CLI as the ``distillwarden`` command."""

from distillwarden.cli import main

main()
