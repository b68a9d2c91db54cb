"""A headless Chromium driven over the Chrome DevTools Protocol through ``--remote-debugging-pipe``, with the
standard library only: JSON messages separated by NUL bytes, commands written to the browser's file
descriptor 3 and replies read from its descriptor 4
(https://chromedevtools.github.io/devtools-protocol/, "--remote-debugging-pipe" in
https://source.chromium.org/chromium/chromium/src/+/main:content/public/common/content_switches.cc).

Used by the HTML report tests to click, type and measure what is really displayed, with page scripts
disabled (``Emulation.setScriptExecutionDisabled``) or enabled."""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Puts the two pipe ends on descriptors 3 and 4 (where Chromium expects them), then becomes the browser.
_EXEC_WITH_PIPES = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
                    "os.close(int(sys.argv[1])); os.close(int(sys.argv[2])); "
                    "os.execv(sys.argv[3], sys.argv[3:])")


class CdpError(RuntimeError):
    pass


class Browser:
    """One Chromium process, one page target attached in flat mode (commands carry its sessionId)."""

    def __init__(self, executable: str, flags: list[str], profile: Path, *, timeout: float = 60):
        self.timeout = timeout
        self._log = (profile.parent / f"{profile.name}.log").open("wb")
        cmd_r, self._cmd_w = os.pipe()
        self._rep_r, rep_w = os.pipe()
        # descriptors >= 10 so that moving them to 3 and 4 in the child cannot overwrite one another
        child_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(rep_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_r)
        os.close(rep_w)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _EXEC_WITH_PIPES, str(child_r), str(child_w), executable, *flags,
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(child_r, child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self._log)
        os.close(child_r)
        os.close(child_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    # -- protocol -----------------------------------------------------------------------------------------
    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        return self._next_id

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("no reply from Chromium in time")
            ready, _, _ = select.select([self._rep_r], [], [], left)
            if ready:
                chunk = os.read(self._rep_r, 1 << 20)
                if not chunk:
                    self._log.flush()
                    err = Path(self._log.name).read_text(errors="replace")
                    raise CdpError(f"Chromium closed the pipe: {err[-2000:]}")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, *, session: str | None = None, **params: Any) -> dict[str, Any]:
        """A browser-level command (no session) and its result."""
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._read(deadline)
            if msg.get("id") == wanted:
                if "error" in msg:
                    raise CdpError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            if "method" in msg:
                self.events.append(msg)

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the attached page."""
        return self.call(method, session=self.session, **params)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["method"] == method:
                    del self.events[i]
                    return ev
            msg = self._read(deadline)
            if "method" in msg:
                self.events.append(msg)

    # -- page helpers -------------------------------------------------------------------------------------
    def open(self, url: str, *, scripts: bool, width: int = 1400, height: int = 1000) -> None:
        """Navigate with the page's own scripts enabled or disabled, and wait for the load event."""
        self.page("Page.enable")
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.page("Emulation.setScriptExecutionDisabled", value=not scripts)
        self.events.clear()
        self.page("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """Evaluate in the page (DevTools evaluation runs even with the page's scripts disabled)."""
        reply = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise CdpError(f"{expression[:80]}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed + released) at the centre of the element, scrolled into view."""
        box = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
            return r.width && r.height ? [r.x + r.width / 2, r.y + r.height / 2] : null; }})()""")
        if box is None:
            raise CdpError(f"{selector} is not displayed: it cannot be clicked")
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=0 if kind == "mouseMoved" else 1)

    def key(self, key: str, code: str, keycode: int) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.page("Input.dispatchKeyEvent", type=kind, key=key, code=code, windowsVirtualKeyCode=keycode)

    def type_text(self, text: str) -> None:
        """Types into the focused element, one character at a time, as a keyboard would."""
        for ch in text:
            self.page("Input.dispatchKeyEvent", type="keyDown", text=ch, key=ch, unmodifiedText=ch)
            self.page("Input.dispatchKeyEvent", type="keyUp", key=ch)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except CdpError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._rep_r):
            os.close(fd)
        self._log.close()
