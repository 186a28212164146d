"""Twin formatting always satisfies EdgeCore's charset; desired values and cycles are parsed strictly."""

from __future__ import annotations

import re

import pytest

from mapper.devices.values import (
    DEFAULT_CYCLE_MS,
    MAX_CYCLE_MS,
    coerce_reading,
    format_twin,
    parse_desired,
    validate_cycle_ms,
)

# EdgeCore's check on every twin value (kubeedge v1.23.1 edge/pkg/devicetwin/dtcommon ValidateTwinValue).
EDGECORE_VALUE = re.compile(r"^[a-zA-Z0-9-_.,:/@#]{1,512}$")

FORMAT_CASES: list[tuple[object, str, str]] = [
    (1e20, "FLOAT", "100000000000000000000"),
    (-1e20, "DOUBLE", "-100000000000000000000"),
    (-0.0, "FLOAT", "0"),
    (-0.0004, "FLOAT", "0"),
    (1e-9, "DOUBLE", "0"),
    (46.0625, "FLOAT", "46.062"),
    (46.0635, "FLOAT", "46.063"),
    (5.133, "FLOAT", "5.133"),
    (100.0, "FLOAT", "100"),
    (0.1 + 0.2, "FLOAT", "0.3"),
    (7, "FLOAT", "7"),
    (True, "FLOAT", "1"),
    (2.5, "INT", "2"),
    (3.5, "INT", "4"),
    (-2.5, "INT", "-2"),
    (1_344_000_000, "INT", "1344000000"),
    (2**63 - 1, "INT", "9223372036854775807"),
    (-(2**63), "INT", "-9223372036854775808"),
    (10**600, "STRING", "1" + "0" * 511),
    (931.41, "INT", "931"),
    (True, "BOOLEAN", "true"),
    (0, "BOOLEAN", "false"),
    (0.01, "BOOLEAN", "true"),
    ("NVIDIA Jetson Orin Nano (4GB ram)", "STRING", "NVIDIA_Jetson_Orin_Nano__4GB_ram_"),
    ('{"a": [1, 2]}', "STRING", "__a_:__1,_2__"),
    ("héllo wörld", "STRING", "h_llo_w_rld"),
    ("温度", "STRING", "__"),
    ("1+1=2", "STRING", "1_1_2"),
    ("a=b<c>?[\\]^", "STRING", "a_b_c______"),
    ("tab\tnew\nline", "STRING", "tab_new_line"),
    ("", "STRING", "none"),
    ("x" * 600, "STRING", "x" * 512),
    ("MODE_15W_4CORE", "STRING", "MODE_15W_4CORE"),
    ("a-b_c.d,e:f/g@h#i", "STRING", "a-b_c.d,e:f/g@h#i"),
    (False, "STRING", "false"),
    (1e20, "STRING", "100000000000000000000"),
    (46.0625, "STRING", "46.062"),
    (12, "STRING", "12"),
    (float("nan"), "STRING", "nan"),
    (1.5, "float", "1.5"),
]


@pytest.mark.parametrize(("value", "type_", "expected"), FORMAT_CASES,
                         ids=[str(i) for i in range(len(FORMAT_CASES))])
def test_format_twin_hard_cases(value: object, type_: str, expected: str) -> None:
    text = format_twin(value, type_)  # type: ignore[arg-type]
    assert text == expected
    assert EDGECORE_VALUE.match(text), text


@pytest.mark.parametrize(("value", "type_"), [
    (float("nan"), "FLOAT"), (float("inf"), "DOUBLE"), (float("-inf"), "INT"), (float("nan"), "INT"),
    (10**600, "INT"), (10**600, "FLOAT"), (2**63, "INT"), (-(2**63) - 1, "INT"), (1e20, "INT"),
    ("abc", "FLOAT"), ("abc", "INT"), ("maybe", "BOOLEAN"),
    (1.0, "BYTES"), (1.0, "STREAM"), (1.0, "COLOUR"),
])
def test_format_twin_refuses_unreportable_values(value: object, type_: str) -> None:
    with pytest.raises(ValueError):
        format_twin(value, type_)  # type: ignore[arg-type]


def test_huge_float_is_still_fixed_point_and_valid() -> None:
    text = format_twin(1.7e308, "DOUBLE")
    assert EDGECORE_VALUE.match(text) and "e" not in text and len(text) == 309


@pytest.mark.parametrize(("value", "type_", "expected"), [
    (931.41, "INT", 931), (2.5, "INT", 2), (True, "INT", 1), ("42", "INT", 42),
    (3, "FLOAT", 3.0), ("4.5", "DOUBLE", 4.5),
    (0.0, "BOOLEAN", False), (-1, "BOOLEAN", True), ("on", "BOOLEAN", True),
    (True, "STRING", "true"), (4.8, "STRING", "4.8"), ("25W", "STRING", "25W"),
])
def test_coerce_reading(value: object, type_: str, expected: object) -> None:
    result = coerce_reading(value, type_)  # type: ignore[arg-type]
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(("text", "type_", "expected"), [
    ("60", "FLOAT", 60.0), (" 29.8 ", "DOUBLE", 29.8), ("-3", "FLOAT", -3.0),
    ("30", "INT", 30), ("30.0", "INT", 30), ("-1", "INT", -1),
    ("true", "BOOLEAN", True), ("FALSE", "BOOLEAN", False), ("1", "BOOLEAN", True),
    ("0", "BOOLEAN", False), ("On", "BOOLEAN", True), ("off", "BOOLEAN", False),
    ("MAXN SUPER", "STRING", "MAXN SUPER"), ("", "STRING", ""),
])
def test_parse_desired_accepts(text: str, type_: str, expected: object) -> None:
    result = parse_desired(text, type_)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(("text", "type_", "message"), [
    ("abc", "FLOAT", "fan_speed: 'abc' is not a number"),
    ("", "FLOAT", "fan_speed: '' is not a number"),
    ("nan", "FLOAT", "fan_speed: 'nan' is not a finite number"),
    ("inf", "DOUBLE", "fan_speed: 'inf' is not a finite number"),
    ("30.5", "INT", "fan_speed: '30.5' is not an integer"),
    ("ten", "INT", "fan_speed: 'ten' is not a number"),
    ("yes", "BOOLEAN", "fan_speed: 'yes' is not a boolean"),
    ("2", "BOOLEAN", "fan_speed: '2' is not a boolean"),
    ("", "BOOLEAN", "fan_speed: '' is not a boolean"),
    ("1", "BYTES", "unsupported property type 'BYTES'"),
])
def test_parse_desired_errors_name_the_property(text: str, type_: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_desired(text, type_, "fan_speed")
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(("value", "expected", "warns"), [
    (0, DEFAULT_CYCLE_MS, False),
    (1, 1, False),
    (10_000, 10_000, False),
    (MAX_CYCLE_MS, MAX_CYCLE_MS, False),
    (-5, DEFAULT_CYCLE_MS, True),
    (MAX_CYCLE_MS + 1, MAX_CYCLE_MS, True),
    (86_400_001, MAX_CYCLE_MS, True),
    (1_000_000_000, 1000, True),  # 1 s written in nanoseconds (upstream samples)
    (10_000_000_000, 10_000, True),
    (10**18, MAX_CYCLE_MS, True),  # nanoseconds, and still more than an hour
])
def test_validate_cycle_ms(value: int, expected: int, warns: bool) -> None:
    cycle, warning = validate_cycle_ms(value, "gpu_usage.reportCycle")
    assert cycle == expected
    assert (warning is not None) == warns
    if warning:
        assert warning.startswith("gpu_usage.reportCycle: ")
