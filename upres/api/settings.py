"""What an Upscaler runs and how it tiles: one frozen dataclass, one field per setting.

`upres run`'s options map one to one onto these fields, and both the CLI and the API build the
chain and the batch options from them here, so the two cannot drift apart. A new setting is a
field here (validated in ``__post_init__``, passed on in :meth:`Settings.build` or
:meth:`Settings.run_options`) and a keyword of :class:`~upres.api.upscaler.Upscaler`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from upres.api.errors import SettingsError
from upres.batch.results import RunOptions
from upres.core.choices import Blend, Mode
from upres.core.sizes import parse_size
from upres.imageio import DEFAULT_MAX_PIXELS, Compression
from upres.runtime.chain_factory import PRECISIONS, SCALES, ChainSetup, build_chain
from upres.runtime.denoise import DenoiseSetting
from upres.runtime.memory import default_memory_target


def default_mode(mode: Mode | None, model: str | None) -> Mode:
    """``mode`` as given; else a model of the user's own runs alone (upres's refine pass would
    cost several times the model), and upres's models run hybrid."""
    if mode is not None:
        return mode
    return Mode.FAITHFUL if model is not None else Mode.HYBRID


@dataclass(frozen=True)
class Settings:
    """The settings of an :class:`~upres.api.upscaler.Upscaler` (`upres run`'s options)."""

    scale: int = 4  # 2 or 4 for upres's models; a model of your own has its own
    # The two names below may be given as members or as their names (a str): __post_init__
    # stores the member, so everything past this object compares members.
    mode: Mode | str | None = None  # deterministic | faithful | hybrid; None: hybrid (faithful with model)
    texture: float = 0.5  # hybrid: refine strength 0..1
    model: str | None = None  # a built-in name or a path to an .onnx model
    precision: str = "fp32"  # fp32 | fp16 | int8
    backend: str = "auto"  # auto | ort-cpu | ort-cuda | ort-trt | trt | torch-cuda | triton://...
    memory: int | str | None = None  # bytes or "2GiB"; None: half the available memory, <= 8 GiB
    tile: int | None = None  # None: planned; 0: whole image; N: cores of N input pixels
    halo: int | None = None  # None: the chain's receptive field
    blend: Blend | str = Blend.AUTO  # auto | crop | feather
    threads: int = 0  # inference threads (0: every core)
    # "auto": a strength per image, from its measured noise and JPEG blockiness; or a fixed
    # strength 0 (the clean models) .. 1 (the restoration models), on a 0.1 grid.
    denoise: str | float = "auto"

    def __post_init__(self) -> None:
        # What can be checked before a model loads is checked here; mode, texture and the model
        # itself are checked by build_chain, which knows them.
        if self.scale not in SCALES and self.model is None:
            raise SettingsError(f"--scale must be 2 or 4, got {self.scale}")
        if self.precision not in PRECISIONS:
            raise SettingsError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        try:
            object.__setattr__(self, "mode", None if self.mode is None else Mode.parse(self.mode))
            object.__setattr__(self, "blend", Blend.parse(self.blend))
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        for name, value in (("tile", self.tile), ("halo", self.halo)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise SettingsError(f"--{name} must be auto (None) or a number of pixels >= 0, "
                                    f"got {value!r}")
        if self.threads < 0:
            raise SettingsError(f"--threads must be 0 (every core) or more, got {self.threads}")
        self.denoise_setting()
        self.memory_target()  # a size that cannot be read fails now, not at the first image

    def denoise_setting(self) -> DenoiseSetting:
        """``denoise`` parsed: auto, or the fixed strength snapped to its 0.1 grid."""
        if isinstance(self.denoise, bool) or not isinstance(self.denoise, str | int | float):
            raise SettingsError(f"--denoise must be 'auto' or a number within 0..1, got "
                                f"{self.denoise!r}")
        try:
            return DenoiseSetting.parse(self.denoise)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def memory_target(self) -> int:
        """``memory`` in bytes (the default target when None)."""
        if self.memory is None:
            return default_memory_target()
        if isinstance(self.memory, int):
            if self.memory <= 0:
                raise SettingsError(f"--memory must be a positive number of bytes, got {self.memory}")
            return self.memory
        try:
            return parse_size(self.memory)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def build(self) -> ChainSetup:
        """The chain: models resolved, sessions (or engines) created. Raises SettingsError for a
        setting build_chain refuses, ModelError, FileNotFoundError, BackendUnavailable, and
        PlanError when a GPU backend's device memory plan cannot fit ``memory``."""
        # GPU backends plan device memory when the chain is built: an explicit memory bounds it.
        device_memory = self.memory_target() if self.memory is not None else None
        mode = self.mode
        assert mode is None or isinstance(mode, Mode)  # __post_init__ parsed it
        try:
            return build_chain(default_mode(mode, self.model), self.scale, self.model,
                               self.texture, self.backend, self.precision, self.threads,
                               device_memory, denoise=self.denoise_setting())
        except ValueError as exc:
            if type(exc) is not ValueError:  # ModelError, PlanError: already their own kind
                raise
            raise SettingsError(str(exc)) from None

    def run_options(self, fmt: str = "same", compression: str | Compression = Compression.DEFAULT,
                    resume: bool = True, max_pixels: int | None = None, wait: float = 0.0,
                    memory: int | None = None) -> RunOptions:
        """The batch options of these settings and one call's file options (``wait``: seconds
        to wait for another run's OUTDIR lock, ``math.inf`` for no limit; ``memory``: the target
        in bytes resolved once by the caller, else :meth:`memory_target`, which for the default
        reads the available memory anew)."""
        if max_pixels is not None and max_pixels < 1:
            # 0 or less would refuse every image (or, as 0 once did, silently mean the default).
            raise SettingsError(f"--max-pixels must be a positive number of pixels, got {max_pixels}")
        try:
            deflate = compression if isinstance(compression, Compression) else \
                Compression.parse(compression)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if math.isnan(wait) or wait < 0:
            raise SettingsError(f"wait must be a number of seconds >= 0, got {wait}")
        assert isinstance(self.blend, Blend)  # __post_init__ parsed it
        return RunOptions(memory=self.memory_target() if memory is None else memory,
                          tile=self.tile, halo=self.halo, blend=self.blend, fmt=fmt,
                          resume=resume, compression=deflate,
                          max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels,
                          threads=self.threads, lock_wait=wait)
