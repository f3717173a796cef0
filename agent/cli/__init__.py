"""The `hearth` command line: a thin shell over agent/, memory/ and adapters/.

`main.py` builds the parser and turns every failure into one line and a non-zero exit;
each command group lives in its own module with a `register(subparsers)` function.
"""
