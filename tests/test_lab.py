"""JupyterLab as `make lab` starts it: it serves the six notebooks, and a kernel runs the course's code."""

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from scripts import run_all

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str, method: str = "GET", body: dict | None = None):
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
        return json.loads(text) if text else None


@pytest.fixture
def lab(tmp_path):
    """`jupyter lab notebooks` (what `make lab` runs), headless on loopback, with a token of our own."""
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "notebooks", *(["--allow-root"] if os.geteuid() == 0 else []),
               "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}"]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            get(f"{base}/api/status", token)
            break
        except OSError:
            assert server.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
            time.sleep(0.5)
    yield base, token
    server.terminate()
    server.wait(timeout=30)
    log.close()


async def execute(url: str, code: str) -> tuple[str, str, set[str]]:
    """Run ``code`` in a kernel over its websocket, as the browser does: (status, what it printed, the
    media types of what it displayed)."""
    from tornado.websocket import websocket_connect

    socket_ = await websocket_connect(url)
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
              "version": "5.3", "date": ""}
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False}
    await socket_.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content,
                                            "channel": "shell", "buffers": []}))
    printed, shown, status, idle = [], set(), None, False
    try:
        while True:
            message = json.loads(await asyncio.wait_for(socket_.read_message(), timeout=120))
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])
            if message["msg_type"] in {"execute_result", "display_data"}:
                shown |= set(message["content"]["data"])
            if message["msg_type"] == "execute_reply":
                status = message["content"]["status"]
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                idle = True  # on iopub, after all the outputs; the reply (shell) may come before or after it
            if status and idle:
                return status, "".join(printed), shown
    finally:
        socket_.close()


@pytest.mark.slow
def test_jupyterlab_serves_the_notebooks_and_a_kernel_runs_the_helpers(lab):
    base, token = lab
    listed = get(f"{base}/api/contents/", token)["content"]
    assert sorted(item["name"] for item in listed if item["type"] == "notebook") == [f"{n}.ipynb" for n in run_all.NOTEBOOKS]
    opened = get(f"{base}/api/contents/06_infer.ipynb", token)
    assert opened["type"] == "notebook" and opened["content"]["cells"]
    assert "JupyterLab" in urllib.request.urlopen(f"{base}/lab?token={token}", timeout=30).read().decode()

    kernel = get(f"{base}/api/kernels", token, method="POST", body={"name": "python3"})
    try:
        url = f"ws://127.0.0.1:{base.rsplit(':', 1)[1]}/api/kernels/{kernel['id']}/channels?token={token}"
        code = "from helpers import assets, infer\ntok = assets.load_tokenizer('splade-tiny')\nprint(infer.with_mask('a {mask} b', tok))"
        status, printed, _ = asyncio.run(execute(url, code))
        assert (status, printed.strip()) == ("ok", "a [MASK] b")
        # notebook 06's last cell: in a live kernel the fill-mask box comes back as a widget, not as text
        code = ("from helpers import interactive\nmodel = assets.load_model('splade-tiny')\n"
                "interactive.fill_mask_box({'base': model}, tok, 'The Milky Way is a [MASK] galaxy.', 3)")
        status, printed, shown = asyncio.run(execute(url, code))
        assert status == "ok" and "application/vnd.jupyter.widget-view+json" in shown and printed == ""
    finally:
        get(f"{base}/api/kernels/{kernel['id']}", token, method="DELETE")
