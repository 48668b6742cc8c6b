"""Image input/output: decode any supported file to float32 RGB in [0, 1], and encode it back.

Decoding turns a file into float32 RGB (plus optional alpha) and an :class:`ImageMeta`
describing what must survive the round trip: colour mode, bit depth, ICC profile, DPI and EXIF.
Encoding quantises back to the source bit depth and writes through
:func:`~upres.core.atomic.atomic_output`, so a crash never leaves a half-written file under
the final name. Encoders are configured to be deterministic (no timestamps).

Pillow decodes most formats; OpenCV decodes 16-bit PNGs (Pillow reduces 48/64-bit PNGs to 8
bits), upres itself 16-bit RGB PPMs and imagecodecs JPEG 2000 deeper than 8 bits (both of which
Pillow reduces too); tifffile (with imagecodecs' codecs) decodes and writes TIFF, including
16-bit RGB, float and BigTIFF. libjpeg's warnings, tifffile's repairs and bad CRCs anywhere in a
PNG fail the file instead of producing a damaged output. A file is read once: its bytes are both
hashed and decoded. XMP, IPTC, comments and PNG text/gamma chunks are carried into outputs
where the format can hold them (`metadata_record`).
"""

from __future__ import annotations

from upres.core.errors import ImageError
from upres.core.paths import display_path
from upres.imageio.bigtiff import BigTiffStripWriter
from upres.imageio.checks import DEFAULT_MAX_PIXELS, input_sha256
from upres.imageio.compression import Compression
from upres.imageio.decode import decoded_sha256, probe_image, read_image
from upres.imageio.encode import (
    OUTPUT_FORMATS,
    Encoding,
    metadata_record,
    output_samples_shape,
    output_suffix,
    resolve_format,
    write_image,
    write_samples,
)
from upres.imageio.metadata import DecodedImage, ImageMeta
from upres.imageio.region import read_region
from upres.imageio.samples import quantize, samples_into, to_output_samples
from upres.imageio.tiff_rows import TiffRows, open_tiff_rows

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "BigTiffStripWriter",
    "Compression",
    "DecodedImage",
    "Encoding",
    "ImageError",
    "ImageMeta",
    "TiffRows",
    "decoded_sha256",
    "display_path",
    "input_sha256",
    "metadata_record",
    "open_tiff_rows",
    "output_samples_shape",
    "output_suffix",
    "probe_image",
    "quantize",
    "read_image",
    "read_region",
    "resolve_format",
    "samples_into",
    "to_output_samples",
    "write_image",
    "write_samples",
]
