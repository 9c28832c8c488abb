"""Names, sizes and configuration: the validation every entry point shares."""
import pytest

from archipelago import config
from archipelago.errors import ConfigError, InvalidArgument, NotFound, from_errno
from archipelago.names import split_snapshot, validate_name
from archipelago.units import format_size, parse_size


@pytest.mark.parametrize("name", ["a", "vm-01.disk_0", "A" * 89, "0abc"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "-x", "a/b", "..", "../etc", "a b", "A" * 90,
                                  "vol@snap", "x\0y", None, "ü"])
def test_invalid_names(name):
    with pytest.raises(InvalidArgument):
        validate_name(name)


def test_split_snapshot():
    assert split_snapshot("vol@snap") == ("vol", "snap")
    assert split_snapshot("vol") == ("vol", None)
    with pytest.raises(InvalidArgument):
        split_snapshot("vol@")


@pytest.mark.parametrize("text,expected", [
    ("10", 10 << 20), ("10G", 10 << 30), ("512K", 512 << 10),
    ("1.5T", 3 << 39), ("4MiB", 4 << 20), ("10 g", 10 << 30), ("1024B", 1024), ("512b", 512)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1.1K", str(1 << 64), "", "10X"])
def test_bad_sizes(text):
    with pytest.raises(InvalidArgument):
        parse_size(text)


def test_size_sector_multiple():
    with pytest.raises(InvalidArgument, match="multiple of 512"):
        parse_size("1000", default_unit="")
    assert format_size(4 << 20) == "4M" and format_size(1536) == "1.5K"


SPEC = config.Section("demo", "test section", [
    config.Option("port", 10, config.integer(1, 65535), "a port"),
    config.Option("flag", False, config.boolean),
])


def test_config_defaults_and_values():
    cfg = config.from_text("[demo]\nPORT = 99\n")
    values = cfg.section(SPEC)
    assert values.port == 99 and values.flag is False
    assert config.from_text("").section(SPEC).port == 10


@pytest.mark.parametrize("text,match", [("[demo]\nport = 0\n", "between"),
                                        ("[demo]\nprot = 5\n", "unknown setting"),
                                        ("[demo]\nflag = maybe\n", "yes/no")])
def test_config_errors_name_the_key(text, match):
    with pytest.raises(ConfigError, match=match):
        config.from_text(text, "x.conf").section(SPEC)


def test_config_explicit_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.conf")


def test_node_dirs_follow_run_dir(run_dir):
    node = config.from_text("").section(config.NODE)
    assert node.run_dir == run_dir and node.state_dir == run_dir / "state"


def test_from_errno():
    err = from_errno(2, "no such volume")
    assert isinstance(err, NotFound) and err.errno == 2
