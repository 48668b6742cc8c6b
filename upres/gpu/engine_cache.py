"""TensorRT engine cache: one engine per complete key, a JSON manifest beside each, validated on
load. Free of TensorRT and CUDA imports, so `upres inspect`, the planner and the tests read it
anywhere.

An engine is only ever loaded when its manifest's key equals the key asked for (ONNX sha256,
TensorRT version, GPU name and compute capability, precision, shape profile and the build options
that change the engine) and the engine file's sha256 equals the manifest's. Anything else (built
by another TensorRT, on another GPU, from another ONNX, or damaged) is stale: it is rebuilt,
never loaded. A version-compatible engine's key names only its TensorRT major version; it is
loaded by that TensorRT major at the version that built it or later, never by an earlier one.
Files are written to a temporary name and renamed, the manifest last, so a half-written engine
never has a manifest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from upres.core.atomic import atomic_write_bytes

MANIFEST_FORMAT = 2  # 2: version-compatible engines (key field, tensorrt_built)
PRECISIONS = ("fp32", "fp16", "int8")
HW_COMPAT_GPU = "any (hardware-compatible, Ampere+)"
HW_COMPAT_MIN_CC = (8, 0)


@dataclass(frozen=True)
class Profile:
    """Square input sides (LR px, halo included) of one optimization profile: min <= opt <= max."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ValueError(f"profile needs 1 <= MIN <= OPT <= MAX, got {self}")

    @classmethod
    def parse(cls, text: str) -> Profile:
        """"64:256:512" -> Profile(64, 256, 512)."""
        parts = text.split(":")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"--profile must be MIN:OPT:MAX in pixels (e.g. 64:256:512), got {text!r}")
        return cls(*(int(p) for p in parts))

    @classmethod
    def for_tile(cls, side: int, smallest: int = 16) -> Profile:
        """Engines for tiles up to `side`, tuned for exactly `side` (the planner's usual tile)."""
        return cls(min(smallest, side), side, side)

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"

    def covers(self, side: int) -> bool:
        return self.min <= side <= self.max


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    tensorrt: str
    gpu: str
    compute_capability: str  # "9.0"
    precision: str
    profile: Profile
    batch: int = 1
    workspace: int = 0  # bytes, 0 = TensorRT's default
    optimization_level: int = 3
    hardware_compat: bool = False
    version_compatible: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = str(self.profile)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineKey:
        values = dict(data)
        values["profile"] = Profile.parse(str(values["profile"]))
        return cls(**values)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def device_fields(gpu_name: str, compute_capability: tuple[int, int],
                  hardware_compat: bool) -> tuple[str, str]:
    """(gpu, compute_capability) as they go into a key. A hardware-compatible engine runs on any
    Ampere or newer GPU, so its key names no particular one."""
    if hardware_compat:
        return HW_COMPAT_GPU, f"{HW_COMPAT_MIN_CC[0]}.{HW_COMPAT_MIN_CC[1]}+"
    return gpu_name, f"{compute_capability[0]}.{compute_capability[1]}"


def tensorrt_field(version: str, version_compatible: bool) -> str:
    """The TensorRT version as it goes into a key: a version-compatible engine runs on later
    versions of the same major, so its key names only the major."""
    return f"{version.split('.')[0]}.x" if version_compatible else version


def version_tuple(version: str) -> tuple[int, ...]:
    """"10.13.0.35" -> (10, 13, 0, 35); non-numeric parts (a "rc1" suffix) end the tuple."""
    parts = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != part:
            break
    return tuple(parts)


@dataclass(frozen=True)
class CachedEngine:
    key: EngineKey
    engine_path: Path
    manifest_path: Path
    engine_sha256: str
    engine_bytes: int
    activation_bytes: int  # device_memory_size_v2: one execution context's memory at the max shape
    model: str
    inputs: dict[str, str]  # tensor name -> dtype
    outputs: dict[str, str]
    build_seconds: float
    upres_version: str
    tensorrt_built: str  # the exact TensorRT version that built it

    def read_verified(self) -> bytes:
        """The engine's bytes, after checking them against the manifest's sha256."""
        data = self.engine_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.engine_sha256:
            raise StaleEngine(f"{self.engine_path.name}: contents changed since it was built "
                              f"(sha256 {digest[:12]} != manifest {self.engine_sha256[:12]})")
        return data


class StaleEngine(RuntimeError):
    """A cached engine that must not be loaded (foreign, outdated or damaged)."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "x"


def default_cache_root() -> Path:
    from upres.core.cache import cache_dir

    return cache_dir() / "engines"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data, pause=False)


class EngineCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()

    def paths(self, key: EngineKey, model: str) -> tuple[Path, Path]:
        stem = f"{_slug(model)}-{key.precision}-{key.digest()[:16]}"
        return self.root / f"{stem}.engine", self.root / f"{stem}.json"

    def timing_cache_path(self, key: EngineKey, tensorrt_version: str) -> Path:
        """Timing caches hold kernel timings for one GPU model and exact TensorRT version, shared
        by all engines built there (so a second model or profile builds faster)."""
        return self.root / (f"timing-{_slug(key.gpu)}-cc{key.compute_capability.rstrip('+')}-"
                            f"trt{_slug(tensorrt_version)}.cache")

    # -- reading --------------------------------------------------------------------------------
    def _read_manifest(self, manifest: Path) -> CachedEngine:
        try:
            data = json.loads(manifest.read_text())
            if not isinstance(data, dict):
                raise StaleEngine(f"{manifest.name}: unreadable manifest (a JSON "
                                  f"{type(data).__name__}, not an object)")
            if data.get("format") != MANIFEST_FORMAT:
                raise StaleEngine(f"{manifest.name}: manifest format {data.get('format')!r}, "
                                  f"this upres writes {MANIFEST_FORMAT}")
            key = EngineKey.from_dict(data["key"])
            return CachedEngine(
                key=key, engine_path=manifest.with_name(data["engine_file"]), manifest_path=manifest,
                engine_sha256=str(data["engine_sha256"]), engine_bytes=int(data["engine_bytes"]),
                activation_bytes=int(data["activation_bytes"]), model=str(data["model"]),
                inputs=dict(data["inputs"]), outputs=dict(data["outputs"]),
                build_seconds=float(data.get("build_seconds", 0.0)),
                upres_version=str(data.get("upres_version", "")),
                tensorrt_built=str(data["tensorrt_built"]))
        except StaleEngine:
            raise
        except (OSError, ValueError, LookupError, TypeError, AttributeError, RecursionError) as exc:
            raise StaleEngine(f"{manifest.name}: unreadable manifest ({type(exc).__name__}: {exc})") from None

    def check(self, key: EngineKey, model: str,
              tensorrt_runtime: str | None = None) -> tuple[CachedEngine | None, str]:
        """(engine, "") when a valid engine for exactly this key is cached, else (None, why not).
        With `tensorrt_runtime`, a version-compatible engine built by a later TensorRT than that
        one is stale (compatibility runs forward only)."""
        engine_path, manifest = self.paths(key, model)
        if not manifest.is_file():
            return None, "not built yet"
        try:
            cached = self._read_manifest(manifest)
        except StaleEngine as exc:
            return None, str(exc)
        if cached.key != key:
            diff = [f"{k}: {v!r} != {key.to_dict()[k]!r}"
                    for k, v in cached.key.to_dict().items() if key.to_dict()[k] != v]
            return None, f"{manifest.name} was built for another key ({'; '.join(diff)})"
        if cached.engine_path != engine_path or not engine_path.is_file():
            return None, f"{engine_path.name} is missing"
        try:
            size = engine_path.stat().st_size
        except OSError as exc:
            return None, f"{engine_path.name}: {exc.strerror or exc}"
        if size != cached.engine_bytes:
            return None, f"{engine_path.name}: size differs from its manifest (damaged)"
        if (tensorrt_runtime is not None
                and version_tuple(cached.tensorrt_built) > version_tuple(tensorrt_runtime)):
            return None, (f"{engine_path.name} was built by TensorRT {cached.tensorrt_built}, newer "
                          f"than this TensorRT {tensorrt_runtime}")
        return cached, ""

    def entries(self) -> list[CachedEngine | tuple[Path, str]]:
        """Every manifest in the cache: a CachedEngine, or (path, why it is unreadable)."""
        found: list[CachedEngine | tuple[Path, str]] = []
        try:
            manifests = sorted(self.root.glob("*.json"))
        except OSError:
            return found  # no readable cache folder: no engines (a file there, or no permission)
        for manifest in manifests:
            try:
                found.append(self._read_manifest(manifest))
            except StaleEngine as exc:
                found.append((manifest, str(exc)))
        return found

    def usable(self, onnx_sha256: str, precision: str, tensorrt: str, gpu: str,
               compute_capability: tuple[int, int]) -> list[CachedEngine]:
        """Valid engines of this ONNX and precision that this GPU and TensorRT may load, largest
        profile first (the planner picks among them)."""
        out = []
        for entry in self.entries():
            if not isinstance(entry, CachedEngine):
                continue
            k = entry.key
            if ((k.onnx_sha256, k.precision, k.tensorrt)
                    != (onnx_sha256, precision, tensorrt_field(tensorrt, k.version_compatible))):
                continue
            if (k.gpu, k.compute_capability) != device_fields(gpu, compute_capability,
                                                              k.hardware_compat):
                continue
            if k.hardware_compat and compute_capability < HW_COMPAT_MIN_CC:
                continue
            valid, _ = self.check(k, entry.model, tensorrt)
            if valid is not None:
                out.append(valid)
        return sorted(out, key=lambda e: (-e.key.profile.max, e.activation_bytes))

    # -- writing --------------------------------------------------------------------------------
    def store(self, key: EngineKey, model: str, engine: bytes, *, tensorrt_built: str,
              activation_bytes: int, inputs: dict[str, str], outputs: dict[str, str],
              build_seconds: float, extra: dict[str, Any] | None = None) -> CachedEngine:
        from upres.core.version import __version__

        engine_path, manifest = self.paths(key, model)
        # Remove the old manifest first: between the two writes there is no valid pair.
        manifest.unlink(missing_ok=True)
        _write_atomic(engine_path, engine)
        record = {
            "format": MANIFEST_FORMAT, "key": key.to_dict(), "key_sha256": key.digest(),
            "engine_file": engine_path.name, "engine_sha256": hashlib.sha256(engine).hexdigest(),
            "engine_bytes": len(engine), "tensorrt_built": tensorrt_built,
            "activation_bytes": int(activation_bytes), "model": model,
            "inputs": inputs, "outputs": outputs, "build_seconds": round(build_seconds, 3),
            "upres_version": __version__, **(extra or {}),
        }
        _write_atomic(manifest, json.dumps(record, indent=2).encode())
        return self._read_manifest(manifest)
