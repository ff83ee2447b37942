"""The ``vekst`` command-line commands: options, printing and files around the library."""
