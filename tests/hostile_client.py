"""A visitor without a browser: Streamlit's own WebSocket protocol, spoken from Python.

A forged widget value does not need a browser: anyone can open ``/_stcore/stream`` and send
``BackMsg`` protobufs. This client opens a session on the Draw page, finds the drawing pad's
widget id in what the server sends, and sends the pad a value of its choosing, so the tests can
forge what the page must survive (oversized or deeply nested values) by the dozen, cheaply.
"""

from __future__ import annotations

import base64
import http.client
import os
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

STREAM_PATH = "/_stcore/stream"
PAD_COMPONENT = "digitlab_drawing_pad"
RUN_TIMEOUT = 120.0  # seconds: a first run loads TensorFlow and the model


@dataclass
class RunResult:
    """What one script run sent back: every element's kind and the texts of alerts and errors."""

    element_kinds: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    pad_id: str | None = None
    pad_data: str = ""  # the JSON the server sent the pad's frontend (size, brush, restore)


def upgrade_status(port: int, host: str) -> int:
    """The HTTP status of a WebSocket upgrade on ``/_stcore/stream`` sent with this Host header
    (101: the session would open; 403: refused)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", STREAM_PATH, skip_host=True)
        for name, value in (("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                            ("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode()),
                            ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Protocol", "streamlit")):
            connection.putheader(name, value)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


class HostileSession:
    """One Streamlit session on the Draw page, driven by hand."""

    def __init__(self, port: int):
        self.socket: ClientConnection = connect(f"ws://127.0.0.1:{port}{STREAM_PATH}", subprotocols=["streamlit"],
                                                max_size=None, open_timeout=30, legacy=True)
        self.pad_id: str | None = None

    def close(self) -> None:
        self.socket.close()

    def run(self, widgets: list[WidgetState] = ()) -> RunResult:
        """Ask for a rerun with these widget values; collect what comes back until it finishes."""
        message = BackMsg()
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = ""
        message.rerun_script.widget_states.widgets.extend(widgets)
        self.socket.send(message.SerializeToString())
        return self._collect()

    def send_pad_value(self, json_text: str) -> RunResult:
        """Rerun with the pad's state set to ``json_text`` (as the component would send it)."""
        if self.pad_id is None:
            raise RuntimeError("run once first: the pad's widget id comes from the server")
        return self.run([WidgetState(id=self.pad_id, json_value=json_text)])

    def _collect(self) -> RunResult:
        result = RunResult()
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(self.socket.recv(timeout=RUN_TIMEOUT))
            kind = forward.WhichOneof("type")
            if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                self._note(forward.delta.new_element, result)
            elif kind == "script_finished":
                self.pad_id = result.pad_id or self.pad_id
                return result

    @staticmethod
    def _note(element, result: RunResult) -> None:
        kind = element.WhichOneof("type")
        result.element_kinds.append(kind)
        if kind == "bidi_component" and PAD_COMPONENT in element.bidi_component.component_name:
            result.pad_id = element.bidi_component.id
            result.pad_data = element.bidi_component.json
        elif kind == "alert":
            result.texts.append(element.alert.body)
        elif kind == "exception":
            result.exceptions.append(f"{element.exception.type}: {element.exception.message}")


def is_closed(session: HostileSession, timeout: float = 10.0) -> bool:
    """Whether the server closes this session's connection within ``timeout`` seconds (e.g. after
    a message over its limit); messages still on their way are read and dropped."""
    try:
        while True:
            session.socket.recv(timeout=timeout)
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False
