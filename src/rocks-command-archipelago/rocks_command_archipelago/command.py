"""The base of every command: Rocks argument conventions (positional arguments, then
key=value parameters), validation, the reply timeout, table or JSON output.

A command class declares
    ARGS   = [("nas", validate_host), ...]      required positional arguments
    OPTARGS = [("attr", str), ...]              optional positional arguments
    PARAMS = {"remotepool": (default, check)}   key=value parameters
and implements run(args, params) -> Output | str.
"""
from archipelago.bus.schema import validate_host, validate_pool
from archipelago.errors import InvalidArgument
from archipelago.names import validate_name
from archipelago.units import parse_size

from .output import Output

COMMON = {"output-format": ("table", None), "timeout": (None, None)}


def host(text):
    return validate_host(text)


def volume(text):
    return validate_name(text)


def pool(text):
    return validate_pool(text)


def gib_size(text):
    """Sizes as Rocks users write them: 10G, 512M; a bare number is GiB (img-storage)."""
    return parse_size(text, "G", what="size")


def boolean(text):
    t = str(text).lower()
    if t in ("1", "y", "yes", "true", "on"):
        return True
    if t in ("0", "n", "no", "false", "off"):
        return False
    raise InvalidArgument(f"{text!r} is not a boolean (yes/no)")


def seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f"timeout={text!r}: not a number of seconds") from None
    if value <= 0:
        raise InvalidArgument("timeout must be greater than zero")
    return value


class Command:
    ARGS = []
    OPTARGS = []
    PARAMS = {}
    usage = ""

    def __init__(self, client, words):
        self.client = client
        self.words = words

    def name(self):
        return " ".join(self.words)

    def parse(self, argv):
        """(args, params) from the command line words after the command name."""
        pos = [a for a in argv if "=" not in a]
        kv = [a.split("=", 1) for a in argv if "=" in a]
        params = {k: d for k, (d, _) in {**COMMON, **self.PARAMS}.items()}
        for key, value in kv:
            key = key.lower()
            if key not in params:
                known = ", ".join(f"{k}=" for k in {**self.PARAMS, **COMMON})
                raise InvalidArgument(f"unknown parameter {key}= (known: {known})")
            check = {**COMMON, **self.PARAMS}[key][1]
            params[key] = check(value) if check else value
        if params["output-format"] not in ("table", "json"):
            raise InvalidArgument("output-format must be table or json")
        if params["timeout"] is not None:
            params["timeout"] = seconds(params["timeout"])
        need, opt = len(self.ARGS), len(self.OPTARGS)
        if not need <= len(pos) <= need + opt:
            raise InvalidArgument(f"usage: rocks {self.name()} {self.usage_line()}")
        args = {}
        for (name, check), value in zip(self.ARGS + self.OPTARGS, pos, strict=False):
            args[name] = check(value) if check else value
        for name, _ in self.OPTARGS[len(pos) - need:]:
            args.setdefault(name, None)
        return args, params

    def usage_line(self):
        words = [n.upper() for n, _ in self.ARGS] + [f"[{n.upper()}]" for n, _ in self.OPTARGS]
        words += [f"[{k}=...]" for k in self.PARAMS]
        return " ".join(words)

    def call(self, node, action, params, role="nas", **fields):
        return self.client.call(node, action, role=role, timeout=params["timeout"], **fields)

    def run(self, args, params):
        raise NotImplementedError

    def execute(self, argv):
        args, params = self.parse(argv)
        out = self.run(args, params)
        if isinstance(out, str):
            out = Output(["result"], [[out]])
            return out.as_json() if params["output-format"] == "json" else out.rows[0][0]
        return out.as_json() if params["output-format"] == "json" else out.as_table()
