"""The pipelined batch behind `upres run` and `upres clean`: read -> plan -> run -> encode ->
atomic write + sidecar, with resume."""

from upres.batch.records import failure_message, settings_record
from upres.batch.results import BatchReport, ImageResult, Progress, RunOptions
from upres.batch.runner import BatchRunner, Loaded
from upres.batch.signals import StopFlag

__all__ = [
    "BatchReport",
    "BatchRunner",
    "ImageResult",
    "Loaded",
    "Progress",
    "RunOptions",
    "StopFlag",
    "failure_message",
    "settings_record",
]
