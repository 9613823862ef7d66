"""The ``fls`` command line: one thin Typer module per pipeline stage, composed in ``pipeline.app``."""
