"""The networks and tile chains behind the studio's previews and accepts, built as `upres clean`
builds them and kept between requests (an ONNX Runtime session takes a second to open)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from upres.batch import RunOptions
from upres.cleaning.pipeline import Cleaner
from upres.cleaning.runner import unscaled_setup
from upres.cleaning.texture import TextureStage, build_texture
from upres.runtime.backends import select
from upres.runtime.chain_factory import ChainSetup, build_chain
from upres.runtime.denoise import DenoiseSetting
from upres.runtime.memory import default_memory_target
from upres.studio.settings import StudioSettings

_CHAINS_KEPT = 2  # each upscale chain holds its sessions' weights and arenas


class Engines:
    def __init__(self, backend: str = "auto", threads: int = 0) -> None:
        self.backend = backend
        self.threads = threads
        self.choice = select.choose(backend)
        self._texture: tuple[TextureStage, str] | None = None
        self._chains: OrderedDict[tuple[object, ...], ChainSetup] = OrderedDict()
        self._lock = threading.Lock()

    def texture(self) -> tuple[TextureStage, str]:
        """The refine texture stage and the refine network's SHA-256 (for the sidecar)."""
        with self._lock:
            if self._texture is None:
                stage, ref = build_texture(self.choice.name, self.threads)
                self._texture = stage, ref.sha256
            return self._texture

    def cleaner(self, settings: StudioSettings) -> Cleaner:
        stage = self.texture()[0] if settings.texture > 0 else None
        return Cleaner(settings.clean(), stage, None, workers=self.threads)

    def model_hashes(self, settings: StudioSettings) -> dict[str, str | None]:
        """What `upres clean` records beside its settings: the networks' SHA-256."""
        return {"refine_sha256": self.texture()[1] if settings.texture > 0 else None,
                "fill_sha256": None}

    def setup(self, settings: StudioSettings) -> ChainSetup:
        if not settings.upscale:
            return unscaled_setup(self.choice.name, self.choice.reason)
        key = (settings.mode, settings.scale, settings.texture, settings.precision, settings.denoise)
        with self._lock:
            if key in self._chains:
                self._chains.move_to_end(key)
                return self._chains[key]
            setup = build_chain(settings.mode, settings.scale, None, settings.texture, self.backend,
                                settings.precision, self.threads,
                                denoise=DenoiseSetting.parse(settings.denoise))
            self._chains[key] = setup
            while len(self._chains) > _CHAINS_KEPT:
                self._chains.popitem(last=False)
            return setup

    def run_options(self, settings: StudioSettings) -> RunOptions:
        """`upres clean`'s options with its defaults: the memory target is planned the same way."""
        return RunOptions(memory=default_memory_target(), fmt=settings.fmt, resume=True,
                          threads=self.threads)
