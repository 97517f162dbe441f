"""The HTML report: built from real shards, opened in headless Chromium over a real loopback HTTP
server; pages render, every audio element loads its source, no console errors; screenshots are
kept under ``test-artifacts/qa/``."""

from __future__ import annotations

import base64
import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from duplexloom.qa.cli import main as qa_main
from duplexloom.qa.report import choose, write_report
from tests.qa.cdp import Chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "qa"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def report(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qa_report")
    index = write_report(str(dataset_dir / "shards"), str(out), n=20, seed=0)
    return Path(index)


def test_report_files(report: Path, dataset_dir: Path) -> None:
    root = report.parent
    pages = sorted(root.glob("samples/*/index.html"))
    assert [p.parent.name.split("_", 1)[1] for p in pages] == [
        "interrupt_0000",
        "toolcall_0000",
        "dialogue_0000",
    ]
    for page in pages:
        user, sr = sf.read(page.parent / "user.wav")
        assistant, _ = sf.read(page.parent / "assistant.wav")
        mix, sr_mix = sf.read(page.parent / "mix.wav")
        assert sr == sr_mix == 16_000
        assert mix.shape == (len(user), 2)  # stereo as in the moshi export: assistant left, user right
        assert (mix[:, 0] == assistant).all() and (mix[:, 1] == user).all()
        assert assistant.any() and not np.array_equal(assistant, user)
        assert (page.parent / "timeline_0.png").read_bytes()[:4] == b"\x89PNG"
    index = report.read_text()
    # The dataset page found summary.json and rejects.jsonl beside shards/ and counted the rejects.
    assert "text_outruns_audio" in index and ">2<" in index
    assert "hours by family" not in index or "families.png" in index
    assert "toolcall" in index and "interrupt" in index
    # Tool-call sample page: action list shows the catalog functions with offsets and chunks.
    tool_page = next(p for p in pages if "toolcall" in p.parent.name).read_text()
    assert "increase_car_setting" in tool_page and "play_media" in tool_page
    assert "&lt;|toolcall_begin|&gt;" in tool_page


def test_sampling_is_seeded_and_bounded() -> None:
    assert choose(100, 5, 0) == choose(100, 5, 0)
    assert choose(100, 5, 0) != choose(100, 5, 1)
    assert len(choose(3, 20, 0)) == 3 and choose(0, 20, 0) == []


def test_qa_cli_writes_report(dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    assert (
        qa_main(
            [
                "sample",
                str(dataset_dir / "shards" / "000001.tar"),
                "--n",
                "1",
                "--seed",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert len(list(out.glob("samples/*/index.html"))) == 1


@pytest.fixture(scope="module")
def server(report: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(report.parent)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make install adds the Debian package)")
    b = Chromium(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


_STATE_JS = """
(async () => {
  const audios = [...document.querySelectorAll('audio')];
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline &&
         audios.some(a => a.readyState < 1 && !a.error)) {
    await new Promise(r => setTimeout(r, 100));
  }
  const imgs = [...document.images];
  return {
    title: document.title,
    audios: audios.map(a => ({src: a.currentSrc, ready: a.readyState, error: a.error && a.error.code,
                              duration: a.duration, state: a.dataset.state})),
    images: imgs.map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
    traceRows: document.querySelectorAll('table.trace tr[data-t]').length,
    qaErrors: document.getElementById('qa-errors').textContent,
    height: document.documentElement.scrollHeight,
    // how far the chunk trace runs past its box sideways (its audio column used to be cut off)
    traceOverflow: (() => { const w = document.querySelector('.trace-wrap');
                            return w ? w.scrollWidth - w.clientWidth : 0; })(),
  };
})()
"""


def _open(b: Chromium, url: str, shot: Path) -> dict:
    session = b.new_page()
    b.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        session,
    )
    b.send("Page.navigate", {"url": url}, session)
    b.wait_event("Page.loadEventFired", session)
    state = b.evaluate(_STATE_JS, session)
    height = min(int(state["height"]), 6000)
    b.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session,
    )
    png = b.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.write_bytes(base64.b64decode(png))
    state["console_errors"] = b.console_errors(session)
    return state


def test_report_in_headless_chromium(report: Path, server: str, browser: Chromium) -> None:
    index = _open(browser, f"{server}/index.html", ARTIFACTS / "report_index.png")
    assert index["title"] == "duplexloom QA report"
    assert index["console_errors"] == [] and index["qaErrors"] == ""
    assert index["images"] and all(i["ok"] for i in index["images"])

    for page in sorted(report.parent.glob("samples/*/index.html")):
        rel = page.relative_to(report.parent).as_posix()
        state = _open(browser, f"{server}/{rel}", ARTIFACTS / f"report_{page.parent.name}.png")
        assert state["console_errors"] == [], rel
        assert state["qaErrors"] == "", rel
        assert len(state["audios"]) == 3, rel
        for a in state["audios"]:
            assert a["error"] is None and a["ready"] >= 1 and a["state"] == "ok", (rel, a)
            assert a["src"].endswith(("user.wav", "assistant.wav", "mix.wav"))
            assert a["duration"] > 1.0
        assert state["images"] and all(i["ok"] for i in state["images"]), rel
        assert state["traceRows"] > 10
        assert state["traceOverflow"] <= 0, (rel, state["traceOverflow"])
        assert (ARTIFACTS / f"report_{page.parent.name}.png").stat().st_size > 10_000


def test_report_shows_violations(dataset_dir: Path, tmp_path: Path) -> None:
    """A sample with a missing member still gets a page, and the dataset page counts it."""
    from tests.qa.fixtures import read_tar, write_tar

    src = dataset_dir / "shards" / "000000.tar"
    bad = tmp_path / "shards" / "000000.tar"
    bad.parent.mkdir()
    bad.write_bytes(
        write_tar([(n, d) for n, d in read_tar(src.read_bytes()) if n != "toolcall_0000.trace.txt"])
    )
    index = Path(write_report(str(bad), str(tmp_path / "r"), n=5, seed=0))
    text = index.read_text()
    assert "missing_member" in text
    assert "no rejects file found" in text  # nothing beside this shards/ folder
    broken = next(index.parent.glob("samples/*toolcall_0000/index.html")).read_text()
    assert "does not decode" in broken and "toolcall_0000.trace.txt is missing" in broken
    good = next(index.parent.glob("samples/*interrupt_0000/index.html")).read_text()
    assert "all invariants hold" in good
