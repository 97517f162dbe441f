"""LLM client throughput: requests/s against the loopback OpenAI server with 200 ms latency.

Runs ``annotate_batch`` (toolcall seeds: one ``actions`` request each, full catalog in the prompt,
structured output, validation, anchors) at 1 and 64 requests in flight. The ideal is
``in_flight / latency`` (5 and 320 req/s); the target is >= 0.8 x ideal at 64. The server runs in a
separate process (like a real endpoint), so client and server do not share a GIL; on a loaded
machine (2 shared cores) the ratio also measures the neighbours.
"""

from __future__ import annotations

import multiprocessing as mp
import time

from duplexloom.annotators import AnnotatorConfig, LLMConfig, annotate_batch
from duplexloom.schemas import Seed
from duplexloom.schemas.annotation import Annotation
from tests.annotators.fake_openai_server import FakeOpenAIServer

LATENCY_S = 0.2


def _seeds(n: int, tag: str) -> list[Seed]:
    return [
        Seed(
            id=f"{tag}-{i}",
            lang="en",
            kind="tool_request",
            family="toolcall",
            turns=[{"role": "user", "text": f"please find videos about topic{tag}{i}"}],
        )
        for i in range(n)
    ]


def _serve(latency_s: float, port_q: mp.Queue, stop: mp.Event) -> None:
    with FakeOpenAIServer(latency_s=latency_s) as srv:
        port_q.put(srv.port)
        stop.wait()


class _ServerProcess:
    def __enter__(self) -> _ServerProcess:
        ctx = mp.get_context("spawn")
        q, self.stop = ctx.Queue(), ctx.Event()
        self.proc = ctx.Process(target=_serve, args=(LATENCY_S, q, self.stop), daemon=True)
        self.proc.start()
        self.base_url = f"http://127.0.0.1:{q.get(timeout=60)}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join(10)


def measure(in_flight: int, n: int) -> tuple[float, int]:
    with _ServerProcess() as srv:
        cfg = AnnotatorConfig(
            backend="llm",
            llm=LLMConfig(base_url=srv.base_url, model="bench", max_in_flight=in_flight, timeout_s=30),
        )
        warm = _seeds(min(n, 8), f"warm{in_flight}")
        annotate_batch(warm, cfg, run_seed=0, families=[w.family for w in warm])  # connections, imports
        seeds = _seeds(n, f"c{in_flight}")
        t0 = time.perf_counter()
        results = annotate_batch(seeds, cfg, run_seed=0, families=[s.family for s in seeds])
        elapsed = time.perf_counter() - t0
        ok = sum(isinstance(r, Annotation) for r in results)
    return n / elapsed, ok


def main() -> None:
    for in_flight, n, target_ratio in ((1, 10, None), (64, 1280, 0.8)):
        ideal = in_flight / LATENCY_S
        rps, ok = measure(in_flight, n)
        ratio = rps / ideal
        target = f"target >= {target_ratio:.2f}" if target_ratio else "reference"
        print(
            f"in_flight={in_flight:3d} requests={n:5d} ok={ok:5d}  {rps:7.1f} req/s  "
            f"ideal {ideal:6.1f}  ratio {ratio:.2f} ({target})"
        )


if __name__ == "__main__":
    main()
