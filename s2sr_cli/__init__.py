"""The ``s2sr`` command line (:mod:`s2sr_cli.main`), one module per subcommand in :mod:`s2sr_cli.commands`."""
