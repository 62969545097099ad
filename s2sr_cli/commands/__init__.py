"""The ``s2sr`` subcommands, one module each.

Every module has ``NAME`` (the subcommand), ``register(subparsers) -> handler`` (adds its subparser, returns
:func:`run`) and ``run(args) -> int``. Module level imports only argparse-level code; ``run`` imports the library
(:mod:`sr_core`) or the openEO layer (:mod:`udf`) it calls.
"""
