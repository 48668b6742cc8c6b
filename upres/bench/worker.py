"""Run a contender in a fresh process, driven over JSON lines, or in this process behind the same API.

A fresh process per contender gives each its own peak RSS (VmHWM) and keeps libraries apart
(torch's and ONNX Runtime's thread pools, OpenCV's global thread count). Workers stay alive for
the whole run and take turns pass by pass, so drifting machine load is shared, not pinned on
whoever ran last.

Protocol (one JSON object per line): the parent sends {"spec", "ctx", "work"}; the worker answers
the start reply; then for each {"cmd": "pass"} a {"times": [...]} and for {"cmd": "finish"} the
finish reply, then exits. Any failure is answered {"status": "failed", "reason"}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import IO, Any

from upres.bench.contender import BenchContext, ContenderSpec
from upres.bench.session import Session, Workload

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `upres` package


class WorkerError(RuntimeError):
    """The contender crashed or the worker process died; the message says why."""


class LocalWorker:
    """Same API as SubprocessWorker, in this process (fast, but RSS is not the contender's alone)."""

    def __init__(self, spec: ContenderSpec, ctx: BenchContext, work: Workload) -> None:
        self._args = (spec, ctx, work)
        self._session: Session | None = None

    def start(self) -> dict[str, Any]:
        try:
            self._session = Session(*self._args, isolated=False)
            return self._session.start()
        except Exception as exc:
            raise WorkerError(f"{type(exc).__name__}: {exc}") from exc

    def run_pass(self) -> list[float]:
        assert self._session is not None
        try:
            return self._session.run_pass()
        except Exception as exc:
            raise WorkerError(f"{type(exc).__name__}: {exc}") from exc

    def finish(self) -> dict[str, Any]:
        assert self._session is not None
        try:
            return self._session.finish()
        except Exception as exc:
            raise WorkerError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._session = None  # free the models before the next contender's checks

    def close(self) -> None:
        self._session = None


class SubprocessWorker:
    def __init__(self, spec: ContenderSpec, ctx: BenchContext, work: Workload) -> None:
        # stderr to a file, not a pipe: a chatty library (OpenCV's TF importer) cannot fill a pipe
        # buffer and stall the worker; its tail is the reason shown when the worker dies.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH"))
                                            if p)
        self._proc = subprocess.Popen([sys.executable, "-m", "upres.bench.worker"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, text=True, env=env)
        self._send({"spec": spec.to_json(), "ctx": ctx.to_json(), "work": work.to_json()})

    def _send(self, msg: dict[str, Any]) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(msg) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerError(self._died(str(exc))) from exc

    def _receive(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise WorkerError(self._died("no reply"))
        reply = json.loads(line)
        if reply.get("status") == "failed":
            raise WorkerError(reply.get("reason", "failed"))
        return reply

    def _died(self, what: str) -> str:
        self._proc.poll()
        self._stderr.seek(0)
        tail = [ln for ln in self._stderr.read().splitlines() if ln.strip()][-3:]
        return f"worker exited ({what}, rc={self._proc.returncode}): " + " | ".join(tail)

    def start(self) -> dict[str, Any]:
        return self._receive()  # the start message was sent by __init__: workers load in parallel

    def run_pass(self) -> list[float]:
        self._send({"cmd": "pass"})
        return list(self._receive()["times"])

    def finish(self) -> dict[str, Any]:
        self._send({"cmd": "finish"})
        return self._receive()

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()  # our own child only
                self._proc.wait()
        self._stderr.close()


Worker = LocalWorker | SubprocessWorker


def _serve(proto: IO[str]) -> int:
    def reply(msg: dict[str, Any]) -> None:
        proto.write(json.dumps(msg) + "\n")
        proto.flush()

    def failed(exc: BaseException) -> dict[str, Any]:
        traceback.print_exc(file=sys.stderr)
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}

    init = json.loads(sys.stdin.readline())
    try:
        session = Session(ContenderSpec.from_json(init["spec"]), BenchContext.from_json(init["ctx"]),
                          Workload.from_json(init["work"]), isolated=True)
        started = session.start()
    except Exception as exc:
        reply(failed(exc))
        return 1
    reply(started)
    if started["status"] != "ready":
        return 0
    for line in sys.stdin:
        cmd = json.loads(line).get("cmd")
        try:
            if cmd == "pass":
                reply({"times": session.run_pass()})
            elif cmd == "finish":
                reply(session.finish())
                return 0
            else:
                reply({"status": "failed", "reason": f"unknown command {cmd!r}"})
        except Exception as exc:
            reply(failed(exc))
            return 1
    return 0


def main() -> int:
    # The protocol gets a private copy of stdout; fd 1 then points at stderr, so a library that
    # prints (Python or C level) cannot corrupt the JSON stream.
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return _serve(proto)


if __name__ == "__main__":
    sys.exit(main())
