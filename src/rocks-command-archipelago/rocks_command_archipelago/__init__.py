"""The Rocks frontend commands of the Archipelago roll (DESIGN §4).

Each command is a module under `commands/<verb>/<object>/.../<name>.py` holding a
`Command` class, the way Rocks lays out `rocks.commands.*`, so the same modules can
be dropped into a Rocks frontend's command tree. `rocks` (cli.py) runs them on
machines without Rocks.
"""
