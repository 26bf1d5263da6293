"""WordLlama's embeddings come from the installed wheel alone: with the network blocked nothing is fetched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from models.intent_classifier.embeddings import Embeddings

BLOCKED = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network blocked by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from models.intent_classifier.embeddings import Embeddings
rows = Embeddings(scale=1.0, dims=64).fit_transform(["what is my balance", "what's my account balance", "play jazz"])
print(round(float(rows[0] @ rows[1]), 3), round(float(rows[0] @ rows[2]), 3))
"""


def test_loading_and_embedding_fetch_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "0"}
    done = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    near, far = map(float, done.stdout.split())
    assert near > far  # two ways to ask for a balance are closer than either is to music
    assert not home.exists() or not any(home.rglob("*"))  # no cache was written either


def test_rows_are_unit_vectors_times_the_scale_and_the_pickle_holds_no_weights() -> None:
    import pickle

    rows = Embeddings(scale=2.0, dims=64).fit_transform(["transfer money", "book a flight"])
    assert rows.shape == (2, 64)
    assert np.allclose(np.linalg.norm(rows, axis=1), 2.0)
    assert len(pickle.dumps(Embeddings())) < 1000
    assert not np.isnan(Embeddings().fit_transform(["", ":"])).any()  # no token: a zero vector, never NaN
