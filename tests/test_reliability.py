"""Issue 7: hostile inputs, crashes mid-batch, a full disk, concurrent runs, outputs kept in OUTDIR.

Runs that must survive signals or could hang go through a real `upres run` subprocess with a
timeout; the rest run in-process. Every run is `--mode deterministic` or `--mode faithful
--scale 2` on tiny images.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hostile_corpus import Entry, build
from PIL import Image
from support import AMPLE_MEMORY, SAMPLE
from typer.testing import CliRunner

from upres.cli import app
from upres.core import pause_points
from upres.core.atomic import is_temp_name
from upres.core.hashing import file_sha256
from upres.imageio import ImageError, read_image
from upres.runtime.inputs import InputError, collect_jobs, output_suffix
from upres.runtime.lock import LOCK_NAME, OutdirLock, OutdirLocked, read_holder

runner = CliRunner()
FAITHFUL = ("--mode", "faithful", "--scale", "2")
FAST = ("--mode", "deterministic", "--scale", "2")


def _upres(*args: str) -> list[str]:
    return [sys.executable, "-m", "upres", "run", *args, "--quiet"]


def _run_in_process(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", *args, "--quiet"])
    return result.exit_code, result.output


def _photos(folder: Path, count: int, size: tuple[int, int] = (64, 48)) -> list[Path]:
    """``count`` different crops of the bundled sample."""
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLE) as im:
        rgb = im.convert("RGB")
    w, h = size
    paths = []
    for i in range(count):
        x, y = (i * 13) % (rgb.width - w), (i * 7) % (rgb.height - h)
        path = folder / f"img{i:03d}.png"
        rgb.crop((x, y, x + w, y + h)).save(path)
        paths.append(path)
    return paths


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if is_temp_name(p.name)]


def _sidecars(folder: Path) -> list[Path]:
    """Finished sidecars: pathlib's glob also matches a killed writer's hidden temporary one."""
    return [p for p in folder.glob("*.json") if not is_temp_name(p.name)] if folder.exists() else []


def _images(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.suffix != ".json" and p.name != LOCK_NAME and not is_temp_name(p.name)}


def _assert_sidecars_match(folder: Path) -> None:
    for name in _images(folder):
        record = json.loads((folder / f"{name}.json").read_text())
        assert record["output"]["sha256"] == file_sha256(folder / name), name


def _wait_for(predicate, process: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    """Poll ``predicate`` until true; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process.poll() is not None:
            return predicate()
        time.sleep(0.01)
    process.kill()
    raise AssertionError("timed out waiting for the run")


def _pause_env(folder: Path, point: str, after: int) -> dict[str, str]:
    """The environment of a run that pauses at ``point`` the ``after``-th time it gets there
    (upres.core.pause_points), so a test signals or kills it there and never by timing."""
    folder.mkdir(parents=True)
    (folder / point).write_text(str(after))
    return {**os.environ, pause_points.ENV: str(folder)}


def _wait_paused(folder: Path, point: str, process: subprocess.Popen) -> int:
    """The pid paused at ``point``; fails if the run ended without getting there."""
    marker = folder / f"{point}.paused"
    if not _wait_for(marker.exists, process, timeout=180):
        _, stderr = process.communicate(timeout=30)
        raise AssertionError(f"the run ended before pausing at {point!r}: {stderr!r}")
    return int(marker.read_text())


# -- hostile inputs ------------------------------------------------------------------------------


def _expected_output(entry: Entry, folder: Path, out: Path) -> Path:
    source = entry.path(folder)
    return out / Path(source.name).with_suffix(output_suffix(source, "same"))


def _failure_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("failed:")]


def test_hostile_corpus_every_file_gets_a_defined_result(tmp_path: Path) -> None:
    folder, out = tmp_path / "corpus", tmp_path / "out"
    entries = build(folder)
    assert len(entries) >= 25
    proc = subprocess.run(_upres(str(folder), "-o", str(out), *FAST), capture_output=True,
                          text=True, errors="replace", timeout=240)
    assert proc.returncode == 1, proc.stderr
    # Nothing but one line per failed file: no traceback, no library chatter.
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    failures = _failure_lines(proc.stderr)
    assert lines == failures, proc.stderr
    errors = [e for e in entries if e.expect == "error"]
    assert len(failures) == len(errors), "\n".join(failures)
    expected_files: set[str] = set()  # the lock file too goes away on a clean exit
    for entry in entries:
        output = _expected_output(entry, folder, out)
        if entry.expect == "error":
            matching = [line for line in failures if entry.token in line]
            assert len(matching) == 1, (entry, failures)
            assert entry.reason.lower() in matching[0].lower(), (entry, matching[0])
            assert not output.exists(), entry
            continue
        assert entry.size is not None
        with Image.open(output) as im:
            assert im.size == (entry.size[0] * 2, entry.size[1] * 2), entry
        expected_files |= {output.name, output.name + ".json"}
    names = {os.fsdecode(n) for n in os.listdir(os.fsencode(out))}
    assert names == expected_files  # no output, sidecar or temp file for any failure


def test_png_check_accepts_every_layout(tmp_path: Path) -> None:
    """The PNG structure check (CRCs, full image data) must not refuse valid files: every colour
    type and bit depth, interlaced or not, decodes the same."""
    import struct
    import zlib

    adam7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
             (0, 1, 1, 2))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def row(values: np.ndarray, depth: int) -> bytes:
        if depth >= 8:
            return values.astype(">u2" if depth == 16 else np.uint8).tobytes()
        bits = np.unpackbits(values.astype(np.uint8).reshape(-1, 1), axis=1)[:, 8 - depth:]
        return np.packbits(bits.reshape(-1)).tobytes()

    def encode(pixels: np.ndarray, depth: int, color_type: int, interlace: int) -> bytes:
        h, w, _ = pixels.shape
        raw = b"".join(b"\0" + row(r, depth) for x0, y0, dx, dy in (adam7 if interlace else
                       ((0, 0, 1, 1),)) for r in pixels[y0::dy, x0::dx] if r.size)
        ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, interlace)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                + chunk(b"IEND", b""))

    rng = np.random.default_rng(3)
    path = tmp_path / "p.png"
    layouts = [(1, 0, 1), (2, 0, 1), (4, 0, 1), (8, 0, 1), (16, 0, 1), (8, 2, 3), (16, 2, 3),
               (8, 4, 2), (16, 6, 4)]
    for depth, color_type, channels in layouts:
        for w, h in ((37, 23), (1, 1), (3, 9), (9, 2)):
            pixels = rng.integers(0, 2**depth, (h, w, channels))
            decoded = []
            for interlace in (0, 1):
                data = encode(pixels, depth, color_type, interlace)
                path.write_bytes(data)
                decoded.append(read_image(path).rgb)
                idat = data.index(b"IDAT")
                path.write_bytes(data[:idat - 4] + chunk(b"IDAT", zlib.compress(b"\0")) + data[-12:])
                with pytest.raises(ImageError, match="inflates to"):
                    read_image(path)  # Pillow alone would return black rows
            np.testing.assert_array_equal(decoded[0], decoded[1])


def test_max_pixels_refuses_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from upres.imageio import pillow_decode, png_check

    folder = tmp_path / "in"
    entries = {e.token: e for e in build(folder) if e.token in ("09-", "10-", "05-", "14-")}
    decoded: list[Path] = []
    real_pillow, real_png16 = pillow_decode._pillow_pixels, pillow_decode._png16_pixels
    real_feed = png_check._PngData.feed
    monkeypatch.setattr(pillow_decode, "_pillow_pixels",
                        lambda p, im: decoded.append(p) or real_pillow(p, im))
    monkeypatch.setattr(pillow_decode, "_png16_pixels", lambda p, g: decoded.append(p) or real_png16(p, g))
    monkeypatch.setattr(png_check._PngData, "feed",
                        lambda self, d: decoded.append(self.path) or real_feed(self, d))
    for token in ("09-", "10-"):  # 1e10 and 3.6e9 pixels declared in a few hundred bytes
        with pytest.raises(ImageError, match="above --max-pixels 178956970"):
            read_image(entries[token].path(folder))
    assert decoded == []
    # A lower limit refuses an ordinary image the same way (24x16 = 384 pixels).
    small, deep = entries["05-"].path(folder), entries["14-"].path(folder)
    with pytest.raises(ImageError, match=r"24x16 = .* pixels, above --max-pixels 383"):
        read_image(deep, max_pixels=383)
    assert decoded == []
    assert read_image(small, max_pixels=384).rgb.shape == (16, 24, 3)
    code, text = _run_in_process(str(small), str(deep), "-o", str(tmp_path / "o"), *FAST,
                                 "--max-pixels", "383")
    assert code == 1 and text.count("above --max-pixels 383") == 2, text


# -- crashes and signals ---------------------------------------------------------------------------


def test_sigkill_mid_batch_then_resume_gives_identical_outputs(tmp_path: Path) -> None:
    """Three SIGKILLs, each at a point the run reports it has reached (never a guessed moment):
    after some images' results, and with an output's temporary file complete but not renamed."""
    src = tmp_path / "in"
    _photos(src, 24)
    clean = tmp_path / "clean"
    code, text = _run_in_process(str(src), "-o", str(clean), *FAITHFUL)
    assert code == 0, text
    out = tmp_path / "out"
    left_behind = []  # images still to do after each kill
    temps_after_kill = []
    for k, (point, new_images) in enumerate([("finished", 3), ("before-rename", 2), ("finished", 4)]):
        finished_before = len(_sidecars(out))
        # "finished" counts every result (the skipped ones first); "before-rename" every atomic
        # write (an output, then its sidecar): 2n + 1 is the output of the (n + 1)-th new image.
        after = finished_before + new_images if point == "finished" else 2 * new_images + 1
        pause = tmp_path / f"pause{k}"
        proc = subprocess.Popen(_upres(str(src), "-o", str(out), *FAITHFUL),
                                env=_pause_env(pause, point, after),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert _wait_paused(pause, point, proc) == proc.pid
        proc.kill()
        proc.wait(timeout=30)
        # Whatever is under a final name is complete: atomic rename, sidecar written after.
        for name in _images(out):
            Image.open(out / name).load()
        left_behind.append(24 - len(_sidecars(out)))
        temps_after_kill.append(len(_temps(out)))
        assert len(_sidecars(out)) >= finished_before + new_images
    assert min(left_behind) > 0, left_behind  # every kill landed mid-batch, by construction
    # The writer killed before its rename left its temporary file; the next run sweeps it.
    assert temps_after_kill[1] >= 1, temps_after_kill
    code, text = _run_in_process(str(src), "-o", str(out), *FAITHFUL)  # --resume is the default
    assert code == 0, text
    assert _images(out) == _images(clean)
    assert _temps(out) == [] and not (out / LOCK_NAME).exists()
    _assert_sidecars_match(out)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_stops_after_the_current_image_with_a_summary(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM, and SIGHUP (the terminal closed), sent while the run is paused after its third
    image: the image in hand is finished, then the summary, the report and exit code 1."""
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 12, (96, 80))
    report = tmp_path / "report.json"
    pause = tmp_path / "pause"
    proc = subprocess.Popen(_upres(str(src), "-o", str(out), *FAITHFUL, "--report", str(report)),
                            env=_pause_env(pause, "finished", 3),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_paused(pause, "finished", proc)
    proc.send_signal(sig)
    time.sleep(0.2)  # the handler runs in the paused thread: either order gives the same result
    (pause / "finished.go").touch()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "interrupted:" in stderr and "again to resume" in stderr
    assert "Traceback" not in stderr
    summary = json.loads(report.read_text())
    assert summary["interrupted"] is True and summary["not_started"] > 0
    finished = _images(out)
    assert 3 <= len(finished) == summary["counts"]["done"] < 12
    _assert_sidecars_match(out)
    assert _temps(out) == [] and not (out / LOCK_NAME).exists()


def test_closed_terminal_finishes_the_image_and_writes_the_report(tmp_path: Path) -> None:
    """A real hang-up: the run's terminal (a pty, with the progress bar on it) is closed while the
    run is paused. The kernel sends SIGHUP and writes to the terminal fail from then on: the run
    still finishes the image in hand, writes its report and exits 1, leaving no temp file."""
    import fcntl
    import pty
    import termios

    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 8, (96, 80))
    report = tmp_path / "report.json"
    pause = tmp_path / "pause"
    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "upres", "run", str(src), "-o", str(out), *FAITHFUL,
                             "--report", str(report)], env=_pause_env(pause, "finished", 2),
                            stdin=slave, stdout=slave, stderr=slave, preexec_fn=controlling_terminal)
    os.close(slave)
    marker = pause / "finished.paused"
    deadline = time.monotonic() + 180
    try:
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not pause"
            # Read what the progress bar writes, so that it never blocks on a full pty.
            if select.select([master], [], [], 0.05)[0]:
                os.read(master, 65536)
    finally:
        os.close(master)  # the terminal goes away: SIGHUP
    time.sleep(0.2)
    (pause / "finished.go").touch()
    assert proc.wait(timeout=120) == 1
    summary = json.loads(report.read_text())
    assert summary["interrupted"] is True and 2 <= summary["counts"]["done"] < 8
    assert len(_images(out)) == summary["counts"]["done"]
    _assert_sidecars_match(out)
    assert _temps(out) == [] and not (out / LOCK_NAME).exists()


_INTERRUPT_AT = """
import os
import signal
import sys
import time

AT, HOW = sys.argv[1], sys.argv[2]


class CtrlC:
    # A Ctrl-C landing while the module AT is being imported: a real SIGINT, through whatever
    # handler is installed then. "swallowed": as a C extension's init does, the KeyboardInterrupt
    # becomes an ImportError.
    def find_spec(self, name, path=None, target=None):
        if name != AT:
            return None
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            if HOW == "swallowed":
                raise ImportError("initialization failed") from None
            raise
        raise AssertionError("SIGINT did not interrupt")

sys.meta_path.insert(0, CtrlC())
sys.argv = ["upres", *sys.argv[3:]]
from upres.cli import main
main()
"""


@pytest.mark.parametrize("module,how,command", [
    ("typer.main", "raised", "run"),  # while upres.cli itself starts (typer)
    ("upres.cli.commands.clean", "raised", "clean"),  # while the command is built, outside typer
    ("upres.batch", "raised", "run"),  # inside the command: typer made it a silent exit 130
    ("numpy", "swallowed", "run"),  # inside the command, turned into an ImportError
])
def test_ctrl_c_anywhere_in_start_up_is_one_line_and_exit_130(tmp_path: Path, module: str, how: str,
                                                             command: str) -> None:
    src = _photos(tmp_path / "in", 1)[0]
    args = [command, str(src), "-o", str(tmp_path / "out")]
    if command == "clean":
        args += ["--mask", str(src)]
    proc = subprocess.run([sys.executable, "-c", _INTERRUPT_AT, module, how, *args],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (130, "interrupted\n"), proc.stderr
    assert not (tmp_path / "out").exists()


def test_second_ctrl_c_stops_at_once_with_one_line(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 8, (96, 80))
    pause = tmp_path / "pause"
    proc = subprocess.Popen(_upres(str(src), "-o", str(out), *FAITHFUL),
                            env=_pause_env(pause, "finished", 2),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_paused(pause, "finished", proc)
    proc.send_signal(signal.SIGINT)  # finish the current image ...
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # ... no: stop now
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "interrupted" and "Traceback" not in stderr, stderr
    for name in _images(out):
        Image.open(out / name).load()
    _assert_sidecars_match(out)
    assert _temps(out) == [] and not (out / LOCK_NAME).exists()


def test_encodes_never_pile_up_behind_fast_inference(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """When encoding is slower than inference, at most one finished output waits in memory."""
    from upres.batch import runner as batch
    from upres.runtime.chain_factory import build_chain

    _photos(tmp_path / "in", 16, (32, 32))
    jobs = collect_jobs([str(tmp_path / "in")], tmp_path / "out")
    written: list[Path] = []
    backlog: list[int] = []
    slow_write = batch.write_samples

    def write_samples(path: Path, *args: object) -> None:
        time.sleep(0.05)
        slow_write(path, *args)  # type: ignore[arg-type]
        written.append(path)

    class Watch(batch.Progress):
        started = 0

        def image_started(self, job: object, tiles: int) -> None:
            self.started += 1
            backlog.append(self.started - 1 - len(written))  # outputs not yet on disk

    monkeypatch.setattr(batch, "write_samples", write_samples)
    setup = build_chain("deterministic", 2, None, 0.5, "ort-cpu", "fp32", 1)
    (tmp_path / "out").mkdir()
    report = batch.BatchRunner(setup, batch.RunOptions(memory=AMPLE_MEMORY), Watch()).run(jobs, print)
    assert report.counts()["done"] == 16 and len(written) == 16
    assert max(backlog) <= 1, backlog


def test_next_image_decodes_ahead_only_where_the_plan_counted_it(tmp_path: Path) -> None:
    """Depth 2 plans hold the next decoded image beside this one; a depth-1 plan (tight --memory)
    must not: the next image is read only after this one is written and freed."""
    import dataclasses

    from upres.batch import runner as batch
    from upres.runtime.chain_factory import build_chain

    _photos(tmp_path / "in", 2, (600, 600))
    _photos(tmp_path / "big", 1, (700, 600))
    jobs = collect_jobs([str(tmp_path / "in")], tmp_path / "out")
    bigger = collect_jobs([str(tmp_path / "big")], tmp_path / "out")[0]
    events: list[tuple[str, str]] = []

    class Recorded(batch.BatchRunner):
        def _load(self, job: batch.Job) -> batch.Loaded:
            events.append(("load", job.source.name))
            return super()._load(job)

    class Watch(batch.Progress):
        def image_started(self, job: batch.Job, tiles: int) -> None:
            events.append(("start", job.source.name))

        def image_finished(self, result: batch.ImageResult) -> None:
            events.append(("written", Path(result.source).name))

    setup = build_chain("deterministic", 2, None, 0.5, "ort-cpu", "fp32", 1)
    runner = Recorded(setup, batch.RunOptions(memory=1 << 34), Watch())
    loaded = runner._load(jobs[0])[1]
    assert runner.plan(600, 600).depth == 2
    assert runner._load_ahead(loaded, jobs[1])  # room for a second image of this size
    assert not runner._load_ahead(loaded, bigger)  # a larger next image was not counted
    # The largest target whose plan for these images drops to depth 1 (the planner's own numbers).
    target = runner.plan(600, 600).estimate["total"]
    while runner.plan(600, 600).depth == 2:
        target -= 1 << 20
        runner.opts = dataclasses.replace(runner.opts, memory=target)
    assert not runner._load_ahead(loaded, jobs[1])
    events.clear()
    (tmp_path / "out").mkdir()
    report = runner.run(jobs, print)
    assert report.counts()["done"] == 2
    a, b = (job.source.name for job in jobs)
    assert events == [("load", a), ("start", a), ("written", a), ("load", b), ("start", b),
                      ("written", b)]


# -- a full disk -----------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 1 MiB tmpfs; needs root and permission to mount, else the test is skipped."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_fails_per_file_and_leaves_no_partial_file(tmp_path: Path, tiny_disk: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):  # noise does not compress: each x2 output is ~190 KiB
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), np.uint8)).save(src / f"n{i}.png")
    code, text = _run_in_process(str(src), "-o", str(tiny_disk), *FAST)
    assert code == 1, text
    failures = _failure_lines(text)
    assert failures and all("no space left on device" in line.lower() for line in failures), text
    written = _images(tiny_disk)
    assert 0 < len(written) < 8 and len(written) + len(failures) == 8
    for name in written:
        assert Image.open(tiny_disk / name).size == (256, 256)
    _assert_sidecars_match(tiny_disk)
    assert _temps(tiny_disk) == []
    assert sorted(p.name for p in tiny_disk.glob("*.json")) == sorted(f"{n}.json" for n in written)


# -- concurrent runs -------------------------------------------------------------------------------

_HOLDER = """
import sys, time
from pathlib import Path
from upres.runtime.lock import OutdirLock
with OutdirLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_second_run_on_a_locked_outdir_is_refused_and_sigkill_releases(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 2)
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert read_holder(out / LOCK_NAME) == holder.pid
        code, text = _run_in_process(str(src), "-o", str(out), *FAST)
        assert code == 2, text
        assert "in use by another upres run" in text and f"pid {holder.pid}" in text
        assert _images(out) == {}
        with pytest.raises(OutdirLocked):
            OutdirLock(out, wait=0.3).acquire()
        # A waiting lock is taken as soon as the holder dies, even by SIGKILL (no cleanup runs:
        # the kernel drops the flock), and the stale lock file is simply reused.
        seen: list[int | None] = []
        threading.Timer(0.5, holder.kill).start()
        with OutdirLock(out, wait=60, on_wait=seen.append):
            assert holder.wait(timeout=5) == -signal.SIGKILL
            assert read_holder(out / LOCK_NAME) == os.getpid()
        assert seen == [holder.pid]
    finally:
        holder.kill()
        holder.wait(timeout=30)
    code, text = _run_in_process(str(src), "-o", str(out), *FAST)
    assert code == 0, text
    assert len(_images(out)) == 2 and not (out / LOCK_NAME).exists()


def test_two_real_runs_at_once_never_write_an_output_twice(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 12)
    reports = [tmp_path / "a.json", tmp_path / "b.json"]
    procs = [subprocess.Popen(_upres(str(src), "-o", str(out), *FAITHFUL, "--report", str(r)),
                              stderr=subprocess.PIPE, text=True) for r in reports]
    results = [(p.wait(timeout=180), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    if codes == [0, 2]:
        assert any("in use by another upres run" in text for _, text in results)
    # 12 images written in all: a run that got the lock second found them all finished.
    done = sum(json.loads(r.read_text())["counts"]["done"] for r in reports if r.exists())
    assert done == 12
    assert len(_images(out)) == 12 and _temps(out) == []
    _assert_sidecars_match(out)


# -- outputs stay in OUTDIR ------------------------------------------------------------------------


def test_outputs_never_escape_outdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    _photos(src / "sub", 1)
    photo = src / "sub" / "img000.png"
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(src / "sub")  # relative arguments with ".." in them
    for arg in (str(photo), f"../sub/../sub/{photo.name}", f"{src}/*/../sub/*.png"):
        jobs = collect_jobs([arg], out)
        assert [j.output for j in jobs] == [out.resolve() / "img000.png"], arg
    # A folder inside OUTDIR that is a symlink to elsewhere is refused, before anything runs...
    (out / "sub").parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, out / "sub")
    with pytest.raises(InputError, match="would escape"):
        collect_jobs([str(src)], out)
    os.unlink(out / "sub")
    # ...and when it appears after the jobs were made, that image fails alone at write time.
    jobs = collect_jobs([str(src)], out)
    os.symlink(outside, out / "sub")
    from upres.batch import BatchRunner, RunOptions
    from upres.runtime.chain_factory import build_chain

    setup = build_chain("deterministic", 2, None, 0.5, "ort-cpu", "fp32", 1)
    errors: list[str] = []
    report = BatchRunner(setup, RunOptions(memory=AMPLE_MEMORY)).run(jobs, errors.append)
    assert report.failed == 1 and "would escape" in errors[0]
    assert list(outside.iterdir()) == []
    os.unlink(out / "sub")
    # An output that would replace its own input is refused (same folder, same format).
    with pytest.raises(InputError, match="overwrite its own input"):
        collect_jobs([str(photo)], photo.parent)
    # OUTDIR inside an input folder: its outputs (and temp files) are never taken as inputs.
    nested_out = src / "upscaled"
    assert _run_in_process(str(src), "-o", str(nested_out), *FAST)[0] == 0
    (src / "sub" / ".img000.png.1.0badf00d.tmp.png").write_bytes(b"")  # an earlier version's
    (src / "sub" / ".upres-000000010badf00d.tmp.png").write_bytes(b"")
    jobs = collect_jobs([str(src)], nested_out)
    assert [j.source for j in jobs] == [photo]
    # A symlinked input is read through the link; the output is named after the link, in OUTDIR.
    link = tmp_path / "link.png"
    os.symlink(photo, link)
    assert collect_jobs([str(link)], out)[0].output == out.resolve() / "link.png"
