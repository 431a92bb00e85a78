"""The C++ program's settings: one value from the config, the same options for every rule that runs
the program, only the precision differing for the fp32 comparison run."""

import re
from pathlib import Path

from alignedreid.foundation.config import resolve
from alignedreid.serving.program_settings import ProgramSettings

MAIN_CC = Path(__file__).resolve().parents[2] / "ascend310_infer" / "src" / "main.cc"


def test_settings_come_from_the_config_once_and_round_trip_as_a_param():
    cfg = resolve({"model": {"height": 256, "width": 128}, "infer": {"precision": "int8", "flip": True, "batch_size": 8, "hint": "throughput"}})
    s = ProgramSettings.from_config(cfg)
    assert (s.batch, s.height, s.width, s.precision, s.hint, s.flip) == (8, 256, 128, "int8", "throughput", True)
    assert ProgramSettings.from_param(s.as_param()) == s
    fp32 = s.at("fp32")
    assert fp32.precision == "fp32" and {k: v for k, v in fp32.as_param().items() if k != "precision"} == {
        k: v for k, v in s.as_param().items() if k != "precision"
    }


def test_arguments_are_options_the_program_knows_each_once():
    known = set(re.search(r"known = \{([^}]*)\}", MAIN_CC.read_text(), re.S).group(1).replace('"', "").replace(" ", "").replace("\n", "").split(","))
    args = ProgramSettings.from_config(resolve({})).arguments(threads=3)
    names = [a[2:] for a in args[::2]]
    assert set(names) <= known and len(names) == len(set(names))
    assert dict(zip(names, args[1::2]))["threads"] == "3" and dict(zip(names, args[1::2]))["flip"] == "0"
