"""Command-line interface (Typer); ``archscale --help`` lists the commands."""
