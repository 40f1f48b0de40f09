"""The page at / in headless Chromium (Debian's `chromium`), driven over the DevTools protocol:
a fake microphone plays a WAV file into the live transcript, and the speech box plays the
streamed audio. What the page shows and plays is compared with the Python API on the exact
samples the page sent and received. A screenshot is kept with the test's output.

Needs the `chromium` binary (apt-get install chromium; .ci/run installs it): without it the
test fails, it does not skip.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from voxtral_native.server.encoding import pcm16

from .conftest import SPEECH_SECONDS, speechlike, wav_bytes
from .test_cli_serve import free_port

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class DevTools:
    """The least of the Chrome DevTools protocol: evaluate, navigate, screenshot."""

    def __init__(self, binary: str, wav: Path, profile: Path, log: Path):
        from websockets.sync.client import connect

        port = free_port()
        self.log = log
        self.proc = subprocess.Popen([
            binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}", "--window-size=900,900",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required", "about:blank",
        ], stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"chromium exited: {log.read_text()[-2000:]}"
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (httpx.TransportError, StopIteration, ValueError):
                assert time.monotonic() < deadline, f"chromium's DevTools did not come up: {log.read_text()[-2000:]}"
                time.sleep(0.2)
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10).__enter__()
        self._id = 0

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self._id:
                assert "error" not in message, message
                return message["result"]

    def eval(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while not (value := self.eval(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {what}; page errors: " \
                f"{self.eval('JSON.stringify(window.voxtralPage && voxtralPage.errors)')}"  # fmt: skip
            time.sleep(0.1)
        return value

    def close(self) -> None:
        self.ws.__exit__(None, None, None)
        self.proc.terminate()
        self.proc.wait(timeout=20)


def samples_of(devtools: DevTools, array: str) -> np.ndarray:
    """int16 samples of a page array of Int16Arrays, concatenated (moved as base64)."""
    b64 = devtools.eval(f"""(() => {{
        const parts = {array}; let n = 0; for (const p of parts) n += p.length;
        const all = new Int16Array(n); let i = 0; for (const p of parts) {{ all.set(p, i); i += p.length; }}
        const bytes = new Uint8Array(all.buffer); let s = "";
        for (let j = 0; j < bytes.length; j += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(j, j + 0x8000));
        return btoa(s); }})()""")
    return np.frombuffer(base64.b64decode(b64), "<i2")


@pytest.fixture
def browser(tmp_path):
    binary = next((b for b in map(shutil.which, BROWSERS) if b), None)
    assert binary, "the web page test needs headless Chromium: apt-get install chromium (.ci/run installs it)"
    wav = tmp_path / "microphone.wav"
    wav.write_bytes(wav_bytes(speechlike(4.0, 16000, seed=12), 16000))
    devtools = DevTools(binary, wav, tmp_path / "profile", tmp_path / "chromium.log")
    yield devtools
    devtools.close()


def test_page_transcribes_the_microphone_and_speaks(browser, server, transcriber, synthesizer, tmp_path,
                                                    record_property):  # fmt: skip
    browser.call("Page.enable")
    browser.call("Page.navigate", url=server.url + "/?record=1")
    browser.wait_for("document.readyState === 'complete' && document.querySelector('#voice').options.length > 0",
                     20, "the page and its voices")  # fmt: skip

    # The microphone: live text while it streams, then the last words after Stop.
    browser.eval("document.querySelector('#mic').click()")
    browser.wait_for("document.querySelector('#transcript').textContent.length > 0", 60, "live transcript text")
    time.sleep(1.0)
    browser.eval("document.querySelector('#mic').click()")
    browser.wait_for("voxtralPage.completed.length === 1", 60, "the completed transcript")
    shown = browser.eval("document.querySelector('#transcript').textContent")
    rate = browser.eval("voxtralPage.rate")
    sent = samples_of(browser, "voxtralPage.sent")
    assert sent.size > rate, "the page streamed less than a second of microphone audio"
    assert shown == browser.eval("voxtralPage.completed[0]") == transcriber.transcribe(sent, sample_rate=rate).text
    assert shown.strip()

    # The speech box: the page plays what the server streams, sample for sample the Synthesizer's.
    text = "Spoken in the browser."
    browser.eval(
        f"document.querySelector('#text').value = {json.dumps(text)}; document.querySelector('#speak').click()"
    )
    browser.wait_for("voxtralPage.speechDone === 1", 60, "the speech to finish")
    heard = samples_of(browser, "voxtralPage.heard")
    frames = int(SPEECH_SECONDS * synthesizer.sample_rate / synthesizer.samples_per_frame)
    expected = synthesizer.synthesize(text, voice=synthesizer.default_voice, seed=42, max_frames=frames)
    assert heard.tobytes() == pcm16(expected)
    assert "done" in browser.eval("document.querySelector('#speech-status').textContent")
    assert browser.eval("voxtralPage.errors.length") == 0

    shot = tmp_path / "web-page.png"
    shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))
    record_property("screenshot", str(shot))
    print(f"screenshot: {shot}")
    assert server.wait_idle()["sessions"] == {}
