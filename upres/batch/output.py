"""Where an image's upscaled strips go: quantised into the samples of a whole output (encoded
once complete), or straight into a BigTIFF written strip by strip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from upres.imageio import (
    BigTiffStripWriter,
    Compression,
    ImageError,
    ImageMeta,
    output_samples_shape,
)
from upres.imageio.samples import NonFiniteError
from upres.runtime.tail import TailPlanes, into_samples


class SampleCanvas:
    """The whole output as quantised samples, filled strip by strip as the tiles come out: no
    float copy of the output is ever assembled (4x the samples' size for 8-bit)."""

    def __init__(self, output: Path, meta: ImageMeta, scale: int, fmt: str) -> None:
        shape, dtype = output_samples_shape(meta, scale, fmt)
        self.output = output
        self.mode = meta.mode
        self.samples = np.empty(shape, dtype)
        self._row = 0

    def add(self, pixels: np.ndarray | TailPlanes) -> None:
        rows = pixels.shape[0]
        try:
            into_samples(pixels, self.samples[self._row : self._row + rows], self.mode)
        except NonFiniteError as exc:
            raise ImageError(self.output, str(exc)) from None
        self._row += rows

    def complete(self) -> np.ndarray:
        if self._row != self.samples.shape[0]:
            raise RuntimeError(f"{self._row} of {self.samples.shape[0]} output rows were produced")
        return self.samples


def streamed_tiff(output: Path, meta: ImageMeta, scale: int,
                  compression: Compression) -> BigTiffStripWriter:
    """The BigTIFF writer of an output too large for memory, in the samples it keeps."""
    channels = (1 if meta.mode == "gray" else 3) + (1 if meta.has_alpha else 0)
    dtype = np.uint16 if meta.bit_depth == 16 else np.uint8
    return BigTiffStripWriter(output, meta.height * scale, meta.width * scale, channels, dtype,
                              meta=meta, scale=scale, compression=compression)


def write_streamed_strip(tiff: BigTiffStripWriter, pixels: np.ndarray | TailPlanes,
                         meta: ImageMeta) -> None:
    strip = np.empty((pixels.shape[0], tiff.width, tiff.channels), tiff.dtype)
    try:
        into_samples(pixels, strip, meta.mode)
    except NonFiniteError as exc:
        raise ImageError(tiff.path, str(exc)) from None
    tiff.write_strip(strip)
