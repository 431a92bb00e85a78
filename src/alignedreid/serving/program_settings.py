"""How the C++ program runs the model: one value built once from the config, used by every rule and
function that starts the program (infer_cpp, infer_cpp_fp32, search_features). Standard library
only: the workflow builds it at parse time. docs/architecture.md §1, "The C++ program's settings"."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgramSettings:
    batch: int  # images per inference request (infer.batch_size)
    height: int  # the model's input size (model.height, model.width)
    width: int
    precision: str  # fp32, bf16, or int8 (the quantised IR)
    hint: str  # OpenVINO performance hint: latency or throughput
    flip: bool  # average each feature with that of the mirrored image
    device_id: int  # the Ascend device (ignored by the CPU backend)

    @classmethod
    def from_config(cls, cfg: dict) -> ProgramSettings:
        """The settings a resolved config asks for (infer.*, model.height/width)."""
        infer, model = cfg["infer"], cfg["model"]
        return cls(
            batch=infer["batch_size"],
            height=model["height"],
            width=model["width"],
            precision=infer["precision"],
            hint=infer["hint"],
            flip=infer["flip"],
            device_id=infer["device_id"],
        )

    def at(self, precision: str) -> ProgramSettings:
        """The same settings at another precision (the fp32 comparison run)."""
        return dataclasses.replace(self, precision=precision)

    def as_param(self) -> dict:
        """A rule's param (plain values: Snakemake compares params between runs)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_param(cls, param: dict) -> ProgramSettings:
        return cls(**param)

    def arguments(self, threads: int) -> list[str]:
        """The program's command-line options for these settings (ascend310_infer/src/main.cc)."""
        return [
            "--batch", str(self.batch),
            "--height", str(self.height),
            "--width", str(self.width),
            "--device_id", str(self.device_id),
            "--threads", str(threads),
            "--flip", "1" if self.flip else "0",
            "--precision", self.precision,
            "--hint", self.hint,
        ]  # fmt: skip
