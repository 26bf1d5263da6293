"""``ctcd simulate``: production traffic with known answers, for trying the loop without customers.

It sends a technique's generated rows (a seed of their own, so not the rows it trained on) through the gateway one
request each, as customers would, then confirms the known label of a share of them through ``POST /v1/feedback``,
as agents would. The readout and the canary analysis then have traffic and labels to judge.
"""

from __future__ import annotations

import asyncio
import random
from typing import Annotated, Any

import typer

from workflows.cli.output import console, settings
from workflows.errors import CtcdError

CONCURRENCY = 16
CHUNK = 5000  # labels per POST /v1/feedback


async def _ask(base: str, technique: str, rows: list[dict[str, Any]], target: list[str]) -> list[dict[str, str]]:
    """One request per row, ``CONCURRENCY`` at a time; the confirmed label of each answered one."""
    import httpx

    limit = asyncio.Semaphore(CONCURRENCY)
    url = f"{base}/v1/models/{technique}:predict"

    async def one(http: httpx.AsyncClient, row: dict[str, Any], label: str) -> dict[str, str] | None:
        async with limit:
            reply = await http.post(url, json={"instances": [row]})
        if reply.status_code != 200:
            return None
        return {"request_id": reply.headers["x-ctcd-request-id"], "label": label}

    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(*(one(http, row, label) for row, label in zip(rows, target, strict=True)))
    return [a for a in answers if a is not None]


def _confirm(url: str, labels: list[dict[str, str]]) -> None:
    """Post confirmed labels; retry while their requests are not yet in the prediction log (flushed every 2 s)."""
    import time

    import httpx

    for _ in range(30):
        reply = httpx.post(url, json=labels, timeout=120)
        if reply.status_code != 422 or "is not in" not in reply.text:
            break
        time.sleep(1)
    if reply.status_code != 200:
        raise CtcdError(f"labels refused ({reply.status_code}): {reply.text[:300]}")


def simulate(
    technique: str,
    requests: Annotated[int, typer.Option("--requests", help="How many questions to send.")] = 2000,
    label_share: Annotated[float, typer.Option("--label-share", help="The share whose label is confirmed.")] = 0.8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated questions.")] = 2027,
) -> None:
    """Send generated questions through the gateway and confirm a share of their known labels."""
    from models.contract import get

    if not 0 <= label_share <= 1 or requests < 1:
        raise CtcdError("give --requests of at least 1 and a --label-share from 0 to 1")
    config = settings()
    found = get(technique)
    frame = found.generate(requests, seed=seed)
    target = [str(x) for x in frame[found.spec.target]]
    rows = frame.drop(columns=[found.spec.target]).to_dict(orient="records")
    labels = asyncio.run(_ask(config.gateway_url, technique, rows, target))
    chosen = random.Random(seed).sample(labels, round(len(labels) * label_share))
    for start in range(0, len(chosen), CHUNK):
        _confirm(f"{config.gateway_url}/v1/feedback", chosen[start : start + CHUNK])
    console.print(f"[green]✓[/] {len(labels)} answered, {len(chosen)} label(s) confirmed for {technique}")
