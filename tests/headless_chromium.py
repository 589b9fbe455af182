"""Debian's Chromium, headless, driven over the DevTools protocol (a WebSocket): open a page,
take screenshots once it has stopped changing. For the viewer's browser test; no other
dependency than ``websockets``, which viser brings."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request

import cv2
import numpy as np
from conftest import free_port


class HeadlessChromium:
    """One tab of a fresh headless Chromium whose page area is exactly ``width`` x ``height``."""

    def __init__(self, executable: str, width: int, height: int) -> None:
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="hmrkit-chromium-")
        port = free_port()
        # software WebGL (SwiftShader): no GPU here
        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
             "--hide-scrollbars", "--no-first-run", f"--window-size={width},{height}",
             f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        page = None
        while page is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                    page = next((t for t in json.load(answer) if t["type"] == "page"), None)
            except OSError:
                pass
            if page is None:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError("chromium did not start")
                time.sleep(0.2)
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.ids = itertools.count(1)
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error'].get('message')}")
                return message["result"]

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def screenshot(self) -> np.ndarray:
        """The page as RGB uint8."""
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def settled(self, unlike: np.ndarray | None = None, timeout: float = 90.0, still: int = 3) -> np.ndarray:
        """A screenshot once the page has stopped changing (``still`` identical shots half a second
        apart) and, if given, differs from ``unlike``."""
        deadline, last, same = time.monotonic() + timeout, None, 0
        while time.monotonic() < deadline:
            try:
                shot = self.screenshot()
            except RuntimeError:  # between pages while navigating
                shot = None
            if shot is not None and not (unlike is not None and np.array_equal(shot, unlike)):
                same = same + 1 if last is not None and np.array_equal(shot, last) else 0
                if same >= still:
                    return shot
            last = shot
            time.sleep(0.5)
        raise TimeoutError(f"the page did not settle within {timeout:.0f} s")

    def close(self) -> None:
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
