"""Archipelago: thin VM volumes over xseg peers (see docs/ and DESIGN)."""


def __getattr__(name):
    # Lazy: importlib.metadata costs ~15-20 ms, paid by every CLI start otherwise.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("archipelago")
        except PackageNotFoundError:  # a source tree without install
            return "0"
    raise AttributeError(f"module 'archipelago' has no attribute {name!r}")
