"""The warm launcher against real processes: a forked step behaves like ``python`` started afresh."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from workflows.engine.pod.launcher import Launcher, WarmChild

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


async def _forked(launcher: Launcher, argv: list[str], env: dict[str, str], cwd: str) -> WarmChild:
    """Fork from the launcher (the first request starts it and waits while it preloads)."""
    for _ in range(200):
        child = await launcher.try_spawn(argv, env, cwd)
        if child is not None:
            return child
        await asyncio.sleep(0.05)
    raise AssertionError("the launcher never became ready")


def run_steps(tmp_path: Path, *steps: tuple[list[str], dict[str, str]], kill: bool = False) -> list[dict[str, Any]]:
    """Fork each step from one launcher (preloading numpy); return exit code, stdout, stderr and pid of each."""

    async def main() -> list[dict[str, Any]]:
        launcher = Launcher(ENV, modules=("numpy",))
        try:
            results = []
            for argv, env in steps:
                child = await _forked(launcher, [sys.executable, *argv], env, str(tmp_path))
                if kill:
                    await asyncio.sleep(0.5)
                    os.killpg(child.pid, signal.SIGTERM)
                out, err, code = await asyncio.gather(child.stdout.read(), child.stderr.read(), child.wait())
                results.append({"code": code, "out": out.decode(), "err": err.decode(), "pid": child.pid})
            return results
        finally:
            await launcher.close()

    return asyncio.run(main())


def script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_streams_exit_codes_env_and_cwd_are_the_steps_own(tmp_path: Path) -> None:
    step = script(
        tmp_path,
        "step.py",
        "import os, sys\n"
        "print('out', os.environ.get('STEP_VAR'), os.environ.get('LAUNCHER_ONLY'), os.getcwd(), sys.argv[1:])\n"
        "print('err', file=sys.stderr)\n"
        "sys.exit(3)\n",
    )
    (result,) = run_steps(tmp_path, ([step, "a", "b"], {**ENV, "STEP_VAR": "v"}))
    assert result["code"] == 3
    assert result["out"].strip() == f"out v None {tmp_path} ['a', 'b']"
    assert result["err"].strip() == "err"
    assert result["pid"] != os.getpid()


@pytest.mark.parametrize(
    ("body", "code", "stderr"),
    [
        ("raise SystemExit('bad input: give a CSV')", 1, "bad input: give a CSV"),
        ("raise ValueError('boom')", 1, "Traceback"),
        ("import sys; sys.exit(0)", 0, ""),
        ("pass", 0, ""),
    ],
)
def test_exits_like_the_interpreter(tmp_path: Path, body: str, code: int, stderr: str) -> None:
    (result,) = run_steps(tmp_path, ([script(tmp_path, "s.py", body + "\n")], ENV))
    assert result["code"] == code and stderr in result["err"]


def test_modules_run_as_main_and_each_child_has_its_own_random_state(tmp_path: Path) -> None:
    draw = script(tmp_path, "draw.py", "import random, numpy\nprint(random.random(), numpy.random.rand())\n")
    zen, first, second = run_steps(tmp_path, (["-m", "this"], ENV), ([draw], ENV), ([draw], ENV))
    assert zen["code"] == 0 and "Beautiful is better than ugly" in zen["out"]
    assert first["out"] != second["out"] and first["pid"] != second["pid"]


def test_a_forked_step_can_be_killed_through_its_own_process_group(tmp_path: Path) -> None:
    sleeper = script(tmp_path, "sleep.py", "import time\ntime.sleep(60)\n")
    (result,) = run_steps(tmp_path, ([sleeper], ENV), kill=True)
    assert result["code"] == -signal.SIGTERM


def test_only_plain_python_steps_with_the_same_import_time_env_are_forked() -> None:
    launcher = Launcher(ENV)
    assert launcher.accepts([sys.executable, "-m", "hera.workflows.runner", "-e", "x:y"], ENV)
    assert launcher.accepts([sys.executable, "/tmp/script"], ENV)
    assert not launcher.accepts([sys.executable, "-c", "print(1)"], ENV)
    assert not launcher.accepts([sys.executable, "-m"], ENV)
    assert not launcher.accepts(["/bin/sh", "-c", "echo"], ENV)
    assert not launcher.accepts([sys.executable, "/tmp/script"], {**ENV, "OMP_NUM_THREADS": "4"})
