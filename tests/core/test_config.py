from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from intelligible.core import ConfigError, config_from_dict, config_to_dict, parse_cli_overrides


@dataclass
class Inner:
    width: int = 4


@dataclass
class Settings:
    n_tokens: int = 1024
    lr: float = 1e-3
    flag: bool = False
    name: str = "run"
    layers: tuple[int, ...] = (0, 1)
    widths: list[int] = field(default_factory=list)
    limit: Optional[int] = None  # noqa: UP045 - the old spelling must work too
    device: str | None = None
    out: Path = Path("runs")
    mode: Literal["fast", "exact"] = "fast"
    pair: tuple[int, int] = (1, 2)
    inner: Inner = field(default_factory=Inner)


@dataclass
class NeedsModel:
    model: str
    steps: int = 10


def test_strings_convert_to_annotated_types():
    values = {
        "n_tokens": "2048",
        "lr": "0.5",
        "flag": "yes",
        "name": "abc",
        "layers": "1,2,3",
        "widths": "[8, 16]",
        "limit": "7",
        "device": "none",
        "out": "somewhere",
        "mode": "exact",
        "pair": "3,4",
        "inner": {"width": "9"},
    }
    config = config_from_dict(Settings, values)
    assert config == Settings(
        n_tokens=2048,
        lr=0.5,
        flag=True,
        name="abc",
        layers=(1, 2, 3),
        widths=[8, 16],
        limit=7,
        device=None,
        out=Path("somewhere"),
        mode="exact",
        pair=(3, 4),
        inner=Inner(width=9),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("1", True), ("Yes", True), ("false", False), ("0", False), ("no", False)],
)
def test_bool_spellings(text, expected):
    assert config_from_dict(Settings, {"flag": text}).flag is expected


def test_native_values_pass_and_dashes_mean_underscores():
    config = config_from_dict(
        Settings, {"n-tokens": 5, "lr": 2, "layers": [4], "limit": None, "n_tokens": 1e3}
    )
    assert config.n_tokens == 1000 and isinstance(config.n_tokens, int)
    assert config.lr == 2.0 and isinstance(config.lr, float)
    assert config.layers == (4,)
    assert config_from_dict(Settings, {"layers": ""}).layers == ()


def test_unknown_key_names_it_and_lists_valid_keys():
    with pytest.raises(ConfigError) as info:
        config_from_dict(Settings, {"n_token": "5"})
    message = str(info.value)
    assert "'n_token'" in message
    assert "did you mean 'n_tokens'" in message
    assert "valid keys: n_tokens, lr, flag, name, layers" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("n_tokens", "abc", "an int"),
        ("n_tokens", "2.5", "an int"),
        ("n_tokens", True, "an int"),
        ("lr", "fast", "a finite float"),
        ("lr", "nan", "a finite float"),
        ("lr", "inf", "a finite float"),
        ("lr", "-Infinity", "a finite float"),
        ("lr", float("nan"), "a finite float"),
        ("n_tokens", "1e30", "at most 2**63 - 1"),
        ("n_tokens", 10**30, "at most 2**63 - 1"),
        ("n_tokens", "inf", "an int"),
        ("flag", "maybe", "a bool"),
        ("layers", "1,x", "comma-separated list of ints"),
        ("pair", "1,2,3", "comma-separated list of ints"),
        ("limit", "many", "an int (at most 2**63 - 1) or None"),
        ("mode", "slow", "one of 'fast', 'exact'"),
        ("name", 3, "a string"),
    ],
)
def test_bad_value_names_key_value_and_type(key, value, expected):
    with pytest.raises(ConfigError) as info:
        config_from_dict(Settings, {key: value})
    message = str(info.value)
    assert f"'{key}'" in message
    assert repr(value) in message
    assert expected in message


def test_a_huge_bad_value_is_not_repeated_in_full():
    with pytest.raises(ConfigError) as info:
        config_from_dict(Settings, {"lr": "x" * 10_000})
    assert len(str(info.value)) < 300
    assert "(10002 chars)" in str(info.value)


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing required key.*model"):
        config_from_dict(NeedsModel, {"steps": "3"})
    assert config_from_dict(NeedsModel, {"model": "m"}).model == "m"


def test_not_a_dataclass_is_a_programming_error():
    with pytest.raises(TypeError):
        config_from_dict(dict, {})


def test_to_dict_is_json_safe_and_round_trips():
    config = Settings(layers=(3, 4), out=Path("x/y"))
    values = config_to_dict(config)
    assert values["layers"] == [3, 4]
    assert values["out"] == "x/y"
    assert values["inner"] == {"width": 4}
    assert config_from_dict(Settings, values) == config
    assert config_to_dict({"p": Path("a"), "t": (1,)}) == {"p": "a", "t": [1]}


def test_parse_cli_overrides():
    args = ["--n-tokens", "2048", "--layers", "1,2", "--flag", "--lr=0.1", "--shift", "-3"]
    assert parse_cli_overrides(args) == {
        "n_tokens": "2048",
        "layers": "1,2",
        "flag": "true",
        "lr": "0.1",
        "shift": "-3",
    }
    assert parse_cli_overrides([]) == {}
    assert parse_cli_overrides(["--last"]) == {"last": "true"}


@pytest.mark.parametrize("args", [["2048"], ["--a", "1", "2"], ["--"], ["-x", "1"]])
def test_parse_cli_overrides_rejects_stray_tokens(args):
    with pytest.raises(ConfigError):
        parse_cli_overrides(args)


def test_cli_overrides_feed_config():
    overrides = parse_cli_overrides(["--n-tokens", "64", "--flag"])
    config = config_from_dict(Settings, overrides)
    assert (config.n_tokens, config.flag) == (64, True)
