"""The embedded broker (`make run`, no Redis): a worker polling the queue while beat writes
to it never takes a message before it is whole."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from kombu import Connection
from kombu.exceptions import ChannelError

# Its own folder and processes; no database.
pytestmark = pytest.mark.backend_free

ROOT = Path(__file__).resolve().parent.parent
TRANSPORT = "webchat.filebroker:Transport"
MESSAGES = 2000

PRODUCER = """
import sys
from kombu import Connection
from kombu.exceptions import ChannelError
transport, folder, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = {"data_folder_in": folder, "data_folder_out": folder, "processed_folder": folder,
           "control_folder": folder + "/control"}
with Connection("filesystem://", transport=transport, transport_options=options) as connection:
    queue = connection.SimpleQueue("rollups")
    for n in range(count):
        queue.put({"n": n, "padding": "x" * 20000})
"""


def folders(tmp_path: Path) -> dict[str, str]:
    folder = str(tmp_path)
    return {
        "data_folder_in": folder,
        "data_folder_out": folder,
        "processed_folder": folder,
        "control_folder": f"{folder}/control",
    }


def test_a_worker_polling_while_messages_are_written_gets_every_one_whole(tmp_path: Path) -> None:
    """kombu's own transport fails this within a few hundred messages on this machine: it
    creates the file, then writes it, and the reader takes it empty (celery/kombu#1551)."""
    folder, options = str(tmp_path), folders(tmp_path)
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, TRANSPORT, folder, str(MESSAGES)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    received: list[int] = []
    try:
        with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as connection:
            queue = connection.SimpleQueue("rollups")
            deadline = time.monotonic() + 60
            while len(received) < MESSAGES and time.monotonic() < deadline:
                try:
                    message = queue.get(timeout=0.01)
                except queue.Empty:
                    continue
                received.append(message.payload["n"])
                message.ack()
    finally:
        _, errors = producer.communicate(timeout=60)
    assert producer.returncode == 0, errors
    assert sorted(received) == list(range(MESSAGES))
    assert not list(tmp_path.glob("*.part")), "a half-written message was left behind"


def test_a_message_that_cannot_be_written_leaves_no_file_and_says_why(tmp_path: Path) -> None:
    with Connection("filesystem://", transport=TRANSPORT, transport_options=folders(tmp_path)) as connection:
        channel = connection.default_channel
        with pytest.raises(TypeError):
            channel._put("rollups", {"body": object()})  # cannot be encoded
        assert [p.name for p in tmp_path.iterdir() if p.is_file()] == []

        (tmp_path / "queue-gone").mkdir()
        gone = {**folders(tmp_path), "data_folder_out": str(tmp_path / "queue-gone" / "missing")}
    with Connection("filesystem://", transport=TRANSPORT, transport_options=gone) as connection:
        with pytest.raises(ChannelError, match="Cannot add file"):
            connection.default_channel._put("rollups", {"body": "fine"})
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []
