"""Calibration: INT8 Q/DQ and FP16 models from real photos, with the accuracy and speed they cost.

    calibrate_int8(model, images, out, samples=256, method="minmax", exclude="auto", max_loss_db=0.3)
    calibrate_fp16(model, images, out, samples=64)
    calibrate_command(...)  # `upres calibrate`, see command.py

Modules: images (find, hash, split), model (inspect), reader (tile-like LR crops), int8, fp16,
sensitivity (what stays float), accuracy (PSNR, speed), report (table, JSON, metadata).
"""

from upres.calibration.fp16 import calibrate_fp16
from upres.calibration.images import CalibrationError
from upres.calibration.int8 import QdqSettings, calibrate_int8
from upres.calibration.reader import CalibrationDataReader, TileCropReader
from upres.calibration.report import CalibrationReport

__all__ = [
    "CalibrationDataReader",
    "CalibrationError",
    "CalibrationReport",
    "QdqSettings",
    "TileCropReader",
    "calibrate_fp16",
    "calibrate_int8",
]
