"""`upres run --ray` on a real local Ray cluster (2 CPUs, CPU backend, small images).

One cluster serves the module (starting Ray costs ~15 s here); every test checks its outputs
against a single-process run, byte for byte. Skipped when the ray extra is not installed (it is
not in the test extra). Kills land where the run says it is, through upres.core.pause_points,
never at a moment guessed by timing: the workers inherit the pause folder from the cluster's
start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from support import SAMPLE
from typer.testing import CliRunner

# A single-machine cluster: every Ray process binds and talks to loopback only (read by Ray at
# import, so set before it), and sends no usage statistics. Subprocess drivers inherit both.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'upres[ray]')")

from upres.cli import app  # noqa: E402
from upres.core import pause_points  # noqa: E402
from upres.fleet.ray_batch import WorkerRequest, worker_slots  # noqa: E402
from upres.runtime.sidecar import read_sidecar  # noqa: E402

runner = CliRunner()
ARGS = ("--mode", "hybrid", "--scale", "2", "--quiet")
WORKER_TITLE = "ray::ImageWorker.process"  # the process title of an actor inside process()


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def _descendants(root: int) -> set[int]:
    table = _proc_table()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    table = _proc_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _start_ray(temp: Path) -> None:
    """ray.init, tried twice: Ray gives a new node a fixed 30 s to register with its GCS, which a
    2-core machine busy with other jobs can miss. A second miss skips: Ray could not start here."""
    for attempt in (1, 2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(temp))
            return
        except Exception as exc:  # Ray raises a bare Exception for this
            ray.shutdown()
            if "timed out during startup" not in str(exc):
                raise
            if attempt == 2:
                pytest.skip(f"Ray could not start a local node on this machine: {exc}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Short: Ray's unix sockets live under the temp dir and their paths must fit in 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="upray", dir="/tmp"))
    saved = {name: os.environ.get(name) for name in ("UPRES_CACHE_DIR", pause_points.ENV)}
    # Workers inherit the environment of the cluster's start: the test session's cache, as in
    # conftest, so memory probes are shared and nothing lands in the user's cache; and the
    # folder of the pause points, which nothing arms unless a test does.
    os.environ["UPRES_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "cache")
    os.environ[pause_points.ENV] = str(tmp_path_factory.mktemp("pause"))
    try:
        _start_ray(temp)
        yield ray.get_runtime_context().gcs_address
    finally:
        spawned = _descendants(os.getpid())
        ray.shutdown()
        deadline = time.monotonic() + 30
        while _alive(spawned) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _alive(spawned)
        strays = [pid for pid in _proc_table() if str(temp) in _cmdline(pid)]
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray processes outlived the test: {[_cmdline(p) for p in left]}"
        assert not strays, f"Ray processes outlived the test: {[_cmdline(p) for p in strays]}"


def _photos(folder: Path, count: int, size: tuple[int, int]) -> list[str]:
    folder.mkdir(parents=True)
    with Image.open(SAMPLE) as im:
        rgb = im.convert("RGB")
        for i in range(count):
            x, y = (i * 7) % (rgb.width - size[0]), (i * 5) % (rgb.height - size[1])
            rgb.crop((x, y, x + size[0], y + size[1])).save(folder / f"img{i:02d}.png")
    return sorted(p.name for p in folder.iterdir())


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", *args])
    return result.exit_code, result.output


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _assert_same_as_reference(out: Path, ref: Path) -> None:
    # Same files (no temporaries, no duplicates, no lock left), same bytes, same settings.
    assert _listing(out) == _listing(ref)
    for name in _listing(ref):
        if name.endswith(".png"):
            assert (out / name).read_bytes() == (ref / name).read_bytes(), name
            mine, theirs = read_sidecar(out / f"{name}.json"), read_sidecar(ref / f"{name}.json")
            assert mine is not None and theirs is not None
            assert mine["settings"] == theirs["settings"]
            assert mine["output"]["sha256"] == theirs["output"]["sha256"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """8 inputs and their single-process outputs (the reference)."""
    root = tmp_path_factory.mktemp("raybatch")
    _photos(root / "in", 8, (128, 96))
    code, text = _run(str(root / "in"), "-o", str(root / "ref"), *ARGS)
    assert code == 0, text
    return root / "in", root / "ref"


def test_worker_slots_count_whole_workers_per_node() -> None:
    nodes = [
        {"Alive": True, "Resources": {"CPU": 8.0, "memory": 10 * 2**30}},
        {"Alive": True, "Resources": {"CPU": 4.0, "GPU": 2.0, "memory": 64 * 2**30}},
        {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0, "memory": 2**40}},
    ]
    assert worker_slots(nodes, WorkerRequest(1, 0, 4 * 2**30)) == 2 + 4  # memory-bound, CPU-bound
    assert worker_slots(nodes, WorkerRequest(1, 1, 2**30)) == 2  # only GPUs of live nodes count
    assert worker_slots(nodes, WorkerRequest(16, 0, 2**30)) == 0


@pytest.mark.slow
def test_ray_batch_is_byte_identical_to_a_local_run(cluster: str, batch: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    src, ref = batch
    out = tmp_path / "out"
    code, text = _run(str(src), "-o", str(out), *ARGS, "--ray", cluster,
                      "--report", str(tmp_path / "r.json"))
    assert code == 0, text
    _assert_same_as_reference(out, ref)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {"done": 8, "skipped": 0, "failed": 0}
    assert [i["source"] for i in report["images"]] == [str(src / n) for n in _listing(src)]
    # A rerun on the cluster resumes: everything is finished already.
    code, text = _run(str(src), "-o", str(out), *ARGS, "--ray", cluster,
                      "--report", str(tmp_path / "r2.json"))
    assert code == 0, text
    assert json.loads((tmp_path / "r2.json").read_text())["counts"]["skipped"] == 8


@pytest.fixture
def pause(cluster: str) -> Iterator[Path]:
    """The cluster's pause folder, emptied around each test (its workers read it at each point)."""
    folder = Path(os.environ[pause_points.ENV])

    def empty() -> None:
        for entry in folder.iterdir():
            entry.unlink()

    empty()
    yield folder
    (folder / "finished.go").touch()  # whatever a failed test left paused goes on
    (folder / "before-rename.go").touch()
    time.sleep(0.1)
    empty()


def _wait_paused(folder: Path, point: str, running: threading.Thread | subprocess.Popen,
                 timeout: float = 180) -> int:
    """The pid of the process paused at ``point``."""
    marker = folder / f"{point}.paused"
    deadline = time.monotonic() + timeout
    while not marker.exists():
        ended = not running.is_alive() if isinstance(running, threading.Thread) else \
            running.poll() is not None
        assert not ended, f"the run ended before pausing at {point!r}"
        assert time.monotonic() < deadline, f"nothing paused at {point!r} in {timeout:.0f} s"
        time.sleep(0.01)
    return int(marker.read_text())


@pytest.mark.slow
def test_a_worker_killed_mid_image_is_retried(cluster: str, batch: tuple[Path, Path],
                                              tmp_path: Path, pause: Path) -> None:
    """The first worker to have an output complete but not yet renamed stops there and is
    SIGKILLed: its temporary file is left behind, Ray retries the image on a restarted worker
    (the point is claimed once, so no second pause), and the driver sweeps the temporary file."""
    src, ref = batch
    out = tmp_path / "out"
    (pause / "before-rename").write_text("1")
    outcome: dict[str, tuple[int, str]] = {}

    def run() -> None:
        outcome["run"] = _run(str(src), "-o", str(out), *ARGS, "--ray", cluster,
                              "--report", str(tmp_path / "r.json"))

    driver = threading.Thread(target=run)
    driver.start()
    try:
        worker = _wait_paused(pause, "before-rename", driver)
        assert _cmdline(worker).startswith(WORKER_TITLE), _cmdline(worker)  # inside process()
        assert worker != os.getpid()
        assert [p for p in out.iterdir() if p.name.startswith(".upres-")], "no temporary file"
        os.kill(worker, signal.SIGKILL)
    finally:
        driver.join(timeout=600)
    assert not driver.is_alive(), "the batch did not finish after the kill"
    code, text = outcome["run"]
    assert code == 0, text
    _assert_same_as_reference(out, ref)  # no temporary file left either
    assert json.loads((tmp_path / "r.json").read_text())["counts"]["done"] == 8


@pytest.mark.slow
def test_resume_after_the_driver_is_killed(cluster: str, batch: tuple[Path, Path],
                                           tmp_path: Path, pause: Path) -> None:
    """The driver stops after its first result and is SIGKILLed there: it had handed out only
    two images per worker, so the batch cannot have finished, whatever the machine's speed."""
    src, ref = batch
    out = tmp_path / "out"
    (pause / "finished").write_text("1")
    driver = subprocess.Popen([sys.executable, "-m", "upres", "run", str(src), "-o", str(out), *ARGS,
                               "--ray", cluster], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert _wait_paused(pause, "finished", driver) == driver.pid
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    finished = len(list(out.glob("*.json")))
    assert 1 <= finished <= 4, finished  # 2 workers x QUEUED_PER_WORKER images handed out
    for name in _listing(out):
        if name.endswith(".png") and not name.startswith("."):
            Image.open(out / name).load()  # whatever has a final name is a complete image
    code, text = _run(str(src), "-o", str(out), *ARGS, "--ray", cluster,
                      "--report", str(tmp_path / "r.json"))
    assert code == 0, text
    _assert_same_as_reference(out, ref)
    counts = json.loads((tmp_path / "r.json").read_text())["counts"]
    assert counts["skipped"] >= finished and counts["done"] + counts["skipped"] == 8, counts
