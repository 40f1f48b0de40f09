"""The speech server under load, on loopback only: requests per second and latency percentiles
for transcription and speech with N concurrent clients, and how many live realtime streams
keep up with real time.

    python benchmarks/server.py --stt models/stt --tts models/tts --clients 1,2,4,8 --streams 1,2,4,8

The server is `voxtral-native serve` in its own process (as deployed; the load generator here
does not share its interpreter), bound to 127.0.0.1 on a free port. Every level is bounded:
--requests per level and --level-seconds of wall time, whichever comes first.

- transcription: each client posts the same clip (--audio-seconds of speech-like audio, 16 kHz
  WAV) again and again (response_format json); latency is request to full answer.
- speech: each client asks for --speech-text as raw PCM and reads it as it streams; first audio
  is the time to the first byte, latency the time to the last. Random-weight models never end an
  utterance, so --max-speech-seconds bounds each answer (the server's own limit).
- realtime: K sockets at once, each sending --stream-seconds of audio in 100 ms appends paced at
  real time, then commit. A stream keeps up when its completed transcript arrives within
  --keep-up-s of its last append (the model had processed the audio as it came, less the
  flush); the level keeps up when every stream does.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np


def speechlike(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / rate) / k for k in range(1, 6))
    x = 0.3 * voiced * (np.sin(2 * np.pi * 2.3 * t) > -0.2) + 0.02 * rng.standard_normal(t.size)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def wav(samples: np.ndarray, rate: int) -> bytes:
    import io

    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def percentiles(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99))}


class Server:
    def __init__(self, args):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "voxtral_native", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--max-speech-seconds", str(args.max_speech_seconds)]  # fmt: skip
        if args.stt:
            cmd += ["--stt", args.stt]
        if args.tts:
            cmd += ["--tts", args.tts]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        self.log = open(args.server_log, "w")  # noqa: SIM115 (open while the server runs; closed in stop)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + args.load_timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited; see {args.server_log}")
            try:
                if httpx.get(self.url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not come up") from None
                time.sleep(0.5)
        self.load_s = args.load_timeout - (deadline - time.monotonic())
        self.models = {m["task"]: m["id"] for m in httpx.get(self.url + "/v1/models").json()["data"]}

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        self.log.close()


def run_level(clients: int, requests: int, seconds: float, one) -> tuple[list, float]:
    """`clients` threads call one() until `requests` are done or `seconds` pass; (results, wall)."""
    results, lock = [], threading.Lock()
    issued = [0]
    deadline = time.monotonic() + seconds

    def worker():
        while True:
            with lock:
                if issued[0] >= requests or time.monotonic() > deadline:
                    return
                issued[0] += 1
            r = one()
            with lock:
                results.append(r)

    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    return results, time.monotonic() - start


def bench_transcription(server: Server, args) -> list[dict]:
    body = wav(speechlike(args.audio_seconds, 16000, seed=1), 16000)
    rows = []
    with httpx.Client(timeout=600) as http:

        def one():
            t = time.monotonic()
            r = http.post(server.url + "/v1/audio/transcriptions", files={"file": ("clip.wav", body)})
            return time.monotonic() - t, r.status_code

        one()  # warm-up
        for n in args.clients:
            results, wall = run_level(n, args.requests, args.level_seconds, one)
            ok = [lat for lat, status in results if status == 200]
            rows.append({"clients": n, "requests": len(results), "errors": len(results) - len(ok),
                         "rps": len(ok) / wall, "audio_x": len(ok) * args.audio_seconds / wall, **percentiles(ok)})  # fmt: skip
    return rows


def bench_speech(server: Server, args) -> list[dict]:
    rows = []
    with httpx.Client(timeout=600) as http:

        def one():
            t = time.monotonic()
            first, size = None, 0
            with http.stream("POST", server.url + "/v1/audio/speech",
                             json={"input": args.speech_text, "response_format": "pcm"}) as r:  # fmt: skip
                for piece in r.iter_raw():
                    first = first if first is not None else time.monotonic() - t
                    size += len(piece)
            return time.monotonic() - t, first, size / 2 / 24000, r.status_code

        one()
        for n in args.clients:
            results, wall = run_level(n, args.requests, args.level_seconds, one)
            ok = [r for r in results if r[3] == 200]
            first = percentiles([r[1] for r in ok])
            rows.append({"clients": n, "requests": len(results), "errors": len(results) - len(ok), "rps": len(ok) / wall,
                         "audio_x": sum(r[2] for r in ok) / wall, "first_p50": first["p50"], "first_p90": first["p90"],
                         **percentiles([r[0] for r in ok])})  # fmt: skip
    return rows


def one_stream(ws_url: str, seconds: float, rate: int, seed: int) -> dict:
    from websockets.sync.client import connect

    samples = speechlike(seconds, rate, seed)
    step = rate // 10
    with connect(ws_url, max_size=None) as ws:
        json.loads(ws.recv())  # session.created
        ws.send(json.dumps({"type": "session.update", "session": {"audio": {"input": {
            "format": {"type": "audio/pcm", "rate": rate}}}}}))  # fmt: skip
        start = time.monotonic()
        late = 0.0
        for i, at in enumerate(range(0, len(samples), step)):
            target = start + i * 0.1
            late = max(late, time.monotonic() - target)
            if target > time.monotonic():
                time.sleep(target - time.monotonic())
            chunk = samples[at : at + step]
            ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk.tobytes()).decode()})
            )
        last_append = time.monotonic()
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        deltas = 0
        while True:
            event = json.loads(ws.recv(timeout=600))
            if event["type"].endswith("transcription.delta"):
                deltas += 1
            if event["type"].endswith("transcription.completed") or event["type"] == "error":
                break
    return {
        "finish_lag": time.monotonic() - last_append,
        "send_late": late,
        "deltas": deltas,
        "ok": event["type"] != "error",
    }


def bench_realtime(server: Server, args) -> list[dict]:
    ws_url = server.url.replace("http", "ws") + "/v1/realtime"
    rows = []
    for k in args.streams:
        with ThreadPoolExecutor(k) as pool:
            results = [f.result() for f in [pool.submit(one_stream, ws_url, args.stream_seconds, 16000, i)
                                            for i in range(k)]]  # fmt: skip
        lags = [r["finish_lag"] for r in results]
        keeps = all(r["ok"] and r["finish_lag"] <= args.keep_up_s for r in results)
        rows.append({"streams": k, "finish_lag_max": max(lags), "finish_lag_p50": statistics.median(lags),
                     "keeps_up": "yes" if keeps else "no", "errors": sum(not r["ok"] for r in results)})  # fmt: skip
        if not keeps and not args.all_levels:
            break
    return rows


def table(rows: list[dict]) -> str:
    if not rows:
        return "(not run)\n"
    head = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in head) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    ints = lambda s: [int(x) for x in s.split(",")]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stt", help="speech-to-text model (artifact dir, checkpoint dir or repo id)")
    p.add_argument("--tts", help="text-to-speech model")
    p.add_argument("--clients", type=ints, default=[1, 2, 4, 8], help="concurrent clients per level (default 1,2,4,8)")
    p.add_argument("--requests", type=int, default=32, help="requests per level at most (default 32)")
    p.add_argument("--level-seconds", type=float, default=60.0, help="wall time per level at most (default 60)")
    p.add_argument("--audio-seconds", type=float, default=5.0, help="transcription clip length (default 5)")
    p.add_argument("--speech-text", default="The quick brown fox jumps over the lazy dog.")
    p.add_argument("--max-speech-seconds", type=float, default=4.0,
                   help="the server's bound on one speech answer (random weights never stop; default 4)")  # fmt: skip
    p.add_argument("--streams", type=ints, default=[1, 2, 4, 8, 16], help="live realtime streams per level")
    p.add_argument("--stream-seconds", type=float, default=10.0, help="audio per realtime stream (default 10)")
    p.add_argument("--keep-up-s", type=float, default=1.0,
                   help="a stream keeps up when its transcript completes within this of its last append (default 1)")  # fmt: skip
    p.add_argument("--all-levels", action="store_true", help="go on past the first realtime level that falls behind")
    p.add_argument("--threads", type=int, default=None, help="the server's runtime threads")
    p.add_argument("--load-timeout", type=float, default=1800.0, help="seconds to wait for the models to load")
    p.add_argument("--server-log", default="/tmp/voxtral-server-bench.log")
    p.add_argument("--out", help="append the results (markdown) to this file")
    args = p.parse_args()

    server = Server(args)
    try:
        sections = [f"## {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()} ({os.cpu_count()} cores)\n",
                    "```\npython benchmarks/server.py " + " ".join(sys.argv[1:]) + "\n```\n",
                    f"models: {server.models}; server up in {server.load_s:.1f} s, RSS {server.rss_mb():.0f} MB\n"]  # fmt: skip
        if args.stt:
            sections += ["### transcription (latency s)\n", table(bench_transcription(server, args)),
                         f"server RSS: {server.rss_mb():.0f} MB\n"]  # fmt: skip
        if args.tts:
            sections += ["### speech (latency s)\n", table(bench_speech(server, args)),
                         f"server RSS: {server.rss_mb():.0f} MB\n"]  # fmt: skip
        if args.stt:
            sections += [f"### realtime ({args.stream_seconds:g} s streams paced at real time)\n",
                         table(bench_realtime(server, args))]  # fmt: skip
        sections.append(f"server RSS after: {server.rss_mb():.0f} MB; sessions live: "
                        f"{httpx.get(server.url + '/health').json()['sessions']}\n")  # fmt: skip
    finally:
        server.stop()
    text = "\n".join(sections)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
