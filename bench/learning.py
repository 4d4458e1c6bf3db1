"""Site learning, measured through the running service (start it first: scripts/up.sh).

For each generator of ../shared/sites/ (1,000 labelled images each, never in the corpus): upload N
samples to a site of its own, ask the trainer to train, wait, then read the matching ../shared/corpus/
folder through POST /ocr with that site, and once without a site (the generic reader). Every image is
read at min_confidence 0, so one pass gives the accuracy with every image answered, and the answered
share and precision at the service's threshold.

    .venv/bin/python -m bench.learning --sizes 100 200 500 --markdown bench/out/learning.md
    .venv/bin/python -m bench.learning --traffic py_captcha     # no uploads: the service's own sure answers

``--traffic FOLDER`` streams the site images through /ocr with the site (no uploads, no feedback) and
reports the answered share on the corpus after every 500 requests.
"""

from __future__ import annotations

import argparse
import base64
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import output_file
from shared.settings import Settings

DATA = Path(__file__).resolve().parents[1].parent / "shared"
CLIENTS = 4


@dataclass
class Measured:
    accuracy: float
    answered: float
    precision: float | None
    ms: float


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _label(path: Path) -> str:
    return path.stem.split("_", 1)[1]


def read_folder(client: httpx.Client, paths: list[Path], site: str | None, threshold: float) -> Measured:
    """Every image read once (min_confidence 0), concurrently, as crawlers would."""
    def read(path: Path) -> tuple[bool, float, float]:
        body = {"image_base64": _b64(path), "min_confidence": 0.0, **({"site": site} if site else {})}
        started = time.perf_counter()
        answer = client.post("/ocr", json=body).json()
        return answer.get("text") == _label(path), answer.get("confidence") or 0.0, time.perf_counter() - started

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(read, paths))
    sure = [right for right, confidence, _ in results if confidence >= threshold]
    return Measured(sum(r for r, _, _ in results) / len(results), len(sure) / len(results),
                    sum(sure) / len(sure) if sure else None, 1000 * sum(s for _, _, s in results) / len(results))


def wait_trained(client: httpx.Client, site: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get(f"/sites/{site}").json()
        if status["training"] in ("idle", "failed") and status["last_training"]:
            return status
        time.sleep(2)
    raise TimeoutError(f"{site} was not trained within {timeout_s:.0f} s")


def learn(client: httpx.Client, folder: str, size: int, threshold: float) -> tuple[Measured, dict]:
    site = f"bench.{folder}.{size}"
    client.delete(f"/sites/{site}")
    paths = sorted((DATA / "sites" / folder).glob("*.png"))[:size]
    for start in range(0, len(paths), 100):
        items = [{"image_base64": _b64(p), "text": _label(p)} for p in paths[start:start + 100]]
        client.post(f"/sites/{site}/samples", json={"items": items}).raise_for_status()
    client.post(f"/sites/{site}/train").raise_for_status()
    status = wait_trained(client, site, timeout_s=1800)
    corpus = sorted((DATA / "corpus" / folder).glob("*.png"))
    return read_folder(client, corpus, site, threshold), status


def _cell(measured: Measured) -> str:
    precision = "-" if measured.precision is None else f"{measured.precision:.3f}"
    return f"{measured.accuracy:.3f} | {measured.answered:.2f} | {precision} | {measured.ms:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=None, help="the service (default: the configured host and port)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--folders", nargs="+", default=None, help="generators (default: all of sites/)")
    parser.add_argument("--traffic", default=None, help="stream one folder's images with no uploads")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings()
    url = args.url or f"http://{settings.host}:{settings.port}"
    folders = args.folders or sorted(p.name for p in (DATA / "sites").iterdir() if p.is_dir())
    lines = ["| generator | N | training min | accuracy | answered | precision | ms/read | generic: accuracy "
             "| answered | precision | ms/read |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    with httpx.Client(base_url=url, timeout=120) as client:
        if args.traffic:
            lines = traffic(client, args.traffic, settings.min_confidence)
        for folder in [] if args.traffic else folders:
            generic = read_folder(client, sorted((DATA / "corpus" / folder).glob("*.png")), None,
                                  settings.min_confidence)
            for size in args.sizes:
                measured, status = learn(client, folder, size, settings.min_confidence)
                minutes = (status["last_training"] or {}).get("train_seconds", 0) / 60
                lines.append(f"| {folder} | {size} | {minutes:.1f} | {_cell(measured)} | {_cell(generic)} |")
                print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        output_file(args.markdown).write_text(table + "\n")


def traffic(client: httpx.Client, folder: str, threshold: float) -> list[str]:
    """Answered share on the corpus after each 500 site images sent with the site and nothing else."""
    site = f"bench.traffic.{folder}"
    client.delete(f"/sites/{site}")
    corpus = sorted((DATA / "corpus" / folder).glob("*.png"))
    stream = sorted((DATA / "sites" / folder).glob("*.png"))
    lines = ["| requests | samples (self) | model | accuracy | answered | precision | ms/read |",
             "|---|---|---|---|---|---|---|"]
    for start in range(0, len(stream) + 1, 500):
        if start:
            read_folder(client, stream[start - 500:start], site, threshold)
            status = client.get(f"/sites/{site}").json()
            if status.get("training") in ("queued", "running"):
                status = wait_trained(client, site, timeout_s=1800)
        status = client.get(f"/sites/{site}").json() if start else {}
        measured = read_folder(client, corpus, site, threshold)
        model = (status.get("model") or {}).get("version", "-")
        lines.append(f"| {start} | {status.get('samples', 0)} | {model} | {_cell(measured)} |")
        print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main()
