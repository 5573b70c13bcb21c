"""The embedded set-up's Celery broker: kombu's filesystem transport, with each message
written whole before it appears in the queue.

kombu creates a message's file in the queue folder and then writes it. A worker polling in
between takes the empty file and dies on it ("Expecting value: line 1 column 1",
celery/kombu#1551): under `make run` beat and the worker poll the same folder every second.
Here a message is written under a name the queue ignores (it does not end in
".<queue>.msg") and renamed into place; a rename within one folder is atomic.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        data = str_to_bytes(dumps(payload))  # a payload that cannot be encoded leaves no file
        # kombu's own name: the time first, so the worker takes messages in order.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f"writing-{name}.part")
        try:
            with open(partial, "wb") as file:
                file.write(data)
            os.replace(partial, final)
        except BaseException as exc:  # an interrupt too: no half-written file is left behind
            with contextlib.suppress(OSError):
                os.remove(partial)
            if isinstance(exc, OSError):
                raise ChannelError(f"Cannot add file {final!r} to directory") from exc
            raise


class Transport(filesystem.Transport):
    Channel = Channel
