"""Site learning, measured through the running service.

For each generator of ../shared/sites/ (1,000 labelled images each, never in the corpus): upload N
samples to a site of its own, ask the trainer to train, wait, then read the matching ../shared/corpus/
folder through POST /ocr with that site, and without a site (the generic reader, asked for the folder's
own charset and length, as the site requests are). Every image is read twice: at min_confidence 0
(the accuracy with every image answered, and the time of a read) and at the service's threshold (the
answered share and its precision, with the generic reader's help when the site model is unsure, as a
user's request is read). These reads say ``learn: false``: measuring teaches a site nothing.
``--set alnum`` does the same with ../shared/sites_alnum/ and corpus_alnum/ (compared ignoring case;
with ``--keep-case``, asked and compared with case kept, as a site request is read by default).

Start the service with the trainer's own schedule off, so that a site is trained when the bench asks,
on all N samples (not as soon as the first 200 are in), then run the bench:

    CAPTCHAOCR_LEARN_MIN_SAMPLES=1000000 scripts/up.sh
    .venv/bin/python -m bench.learning --sizes 100 200 500 --markdown bench/out/learning.md
    .venv/bin/python -m bench.learning --set alnum --sizes 500 --markdown bench/out/learning_alnum.md

``--traffic FOLDER`` (with the service's default schedule: ``scripts/up.sh``) streams the site images
through /ocr with the site and nothing else (no uploads, no feedback), and reports how the corpus is
read after every 500 requests, once the trainings those requests started have finished. With
``--fallback`` each request the service refuses is solved by the user's fallback (the label) and its
answer sent to POST /feedback: the service's sure answers and the captchas it could not read teach it.
"""

from __future__ import annotations

import argparse
import base64
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import output_file, publish
from bench.accuracy import folder_charset
from shared.settings import Settings
from testbed.support import wait_trained

DATA = Path(__file__).resolve().parents[1].parent / "shared"
CLIENTS = 4
TRAINING_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Folders:
    """Where one kind of captcha is: samples to learn from, the corpus to read, how to compare."""

    sites: Path
    corpus: Path
    letters: bool
    keep_case: bool = False

    @classmethod
    def of(cls, kind: str, keep_case: bool = False) -> Folders:
        suffix = "" if kind == "digits" else f"_{kind}"
        return cls(DATA / f"sites{suffix}", DATA / f"corpus{suffix}", kind != "digits", keep_case)

    @property
    def ignore_case(self) -> bool:
        return self.letters and not self.keep_case

    def images(self, root: Path, folder: str) -> list[Path]:
        return sorted((root / folder).glob("*.png"))


@dataclass
class Measured:
    accuracy: float
    answered: float
    precision: float | None
    ms: float

    @classmethod
    def mean(cls, of: list[Measured]) -> Measured:
        """The folders' mean, as the targets are set (precision over the folders that answered any)."""
        precisions = [m.precision for m in of if m.precision is not None]
        return cls(*(sum(getattr(m, name) for m in of) / len(of) for name in ("accuracy", "answered")),
                   sum(precisions) / len(precisions) if precisions else None, sum(m.ms for m in of) / len(of))


def image_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def label_of(path: Path) -> str:
    """The label in a `<index>_<label>.png` file name."""
    return path.stem.split("_", 1)[1]


def asked(folders: Folders, folder: str, label: str) -> dict[str, object]:
    """What a user who knows the site asks for, with or without a site: letters are asked with the
    folder's own charset and the label's length, in case or not as they are compared (a site model keeps
    case unless asked not to; digits are the default)."""
    if not folders.letters:
        return {}
    return {"charset": folder_charset(folders.corpus / folder), "length": len(label), "case": folders.keep_case}


def read_folder(client: httpx.Client, folders: Folders, folder: str, site: str | None) -> Measured:
    """Every corpus image of `folder` read at min_confidence 0 and at the service's threshold,
    concurrently, as crawlers would."""
    def same(text: object, label: str) -> bool:
        if not isinstance(text, str):
            return False
        return text.lower() == label.lower() if folders.ignore_case else text == label

    def read(path: Path) -> tuple[bool, bool | None, float]:
        fields = {"site": site, "learn": False} if site else {}
        body = {"image_base64": image_b64(path), **fields, **asked(folders, folder, label_of(path))}
        started = time.perf_counter()
        anything = client.post("/ocr", json={**body, "min_confidence": 0.0}).json()
        seconds = time.perf_counter() - started
        sure = client.post("/ocr", json=body)
        answered = same(sure.json().get("text"), label_of(path)) if sure.status_code == 200 else None
        return same(anything.get("text"), label_of(path)), answered, seconds

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(read, folders.images(folders.corpus, folder)))
    sure = [right for _, right, _ in results if right is not None]
    return Measured(sum(r for r, _, _ in results) / len(results), len(sure) / len(results),
                    sum(sure) / len(sure) if sure else None, 1000 * sum(s for _, _, s in results) / len(results))


def upload(client: httpx.Client, site: str, paths: list[Path]) -> None:
    """Labelled images (``<index>_<label>.png``) as samples of `site`, 100 a request."""
    for start in range(0, len(paths), 100):
        items = [{"image_base64": image_b64(p), "text": label_of(p)} for p in paths[start:start + 100]]
        client.post(f"/sites/{site}/samples", json={"items": items}).raise_for_status()


def learn(client: httpx.Client, folders: Folders, folder: str, size: int) -> tuple[Measured, dict]:
    site = f"bench.{folders.sites.name}.{folder}.{size}"
    client.delete(f"/sites/{site}")
    upload(client, site, folders.images(folders.sites, folder)[:size])
    client.post(f"/sites/{site}/train").raise_for_status()
    status = wait_trained(client, site, TRAINING_TIMEOUT_S)
    measured = read_folder(client, folders, folder, site)
    client.delete(f"/sites/{site}")  # its samples and models: Redis holds every site in memory
    return measured, status


def _cell(measured: Measured) -> str:
    precision = "-" if measured.precision is None else f"{measured.precision:.3f}"
    return f"{measured.accuracy:.3f} | {measured.answered:.2f} | {precision} | {measured.ms:.0f}"


def traffic(client: httpx.Client, folders: Folders, folder: str, scan_s: float,
            fallback: bool = False) -> list[str]:
    """How the corpus is read after each 500 site images sent with the site and nothing else but, with
    `fallback`, the right answer to each refused one sent back (as a user's fallback would find it)."""
    site = f"bench.traffic.{folders.sites.name}.{folder}"
    client.delete(f"/sites/{site}")
    stream = folders.images(folders.sites, folder)

    def send(path: Path) -> None:
        body = {"image_base64": image_b64(path), "site": site, **asked(folders, folder, label_of(path))}
        response = client.post("/ocr", json=body)
        if fallback and response.status_code == 422:
            feedback = {"job_id": response.json()["job_id"], "text": label_of(path)}
            client.post("/feedback", json=feedback).raise_for_status()

    lines = ["| requests | samples (self) | model | accuracy | answered | precision | ms/read |",
             "|---|---|---|---|---|---|---|"]
    for start in range(0, len(stream) + 1, 500):
        status: dict = {}
        if start:
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(send, stream[start - 500:start]))
            status = settled(client, site, scan_s)
        measured = read_folder(client, folders, folder, site)
        model = (status.get("model") or {}).get("version", "-")
        own = (status.get("samples_by_source") or {}).get("self", 0)
        lines.append(f"| {start} | {status.get('samples', 0)} ({own}) | {model} | {_cell(measured)} |")
        print(lines[-1], flush=True)
    return lines


def settled(client: httpx.Client, site: str, scan_s: float) -> dict:
    """The site's status once a training that its new samples started (within two of the trainer's
    scans) has finished."""
    deadline = time.monotonic() + 2 * scan_s + 5
    while time.monotonic() < deadline:
        status = client.get(f"/sites/{site}").json()
        if status["training"] in ("queued", "running"):
            return wait_trained(client, site, TRAINING_TIMEOUT_S)
        time.sleep(1)
    return client.get(f"/sites/{site}").json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=None, help="the service (default: the configured host and port)")
    parser.add_argument("--set", choices=["digits", "alnum"], default="digits", dest="kind")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--keep-case", action="store_true", help="letters asked and compared with case kept")
    parser.add_argument("--folders", nargs="+", default=None, help="generators (default: all of sites/)")
    parser.add_argument("--traffic", default=None, help="stream one folder's images with no uploads")
    parser.add_argument("--fallback", action="store_true", help="--traffic: refusals fed back")
    parser.add_argument("--markdown", type=output_file, default=None)
    args = parser.parse_args()
    settings = Settings()
    url = args.url or f"http://{settings.host}:{settings.port}"
    folders = Folders.of(args.kind, args.keep_case)
    names = args.folders or sorted(p.name for p in folders.sites.iterdir() if p.is_dir())
    lines = ["| generator | N | training min | accuracy | answered | precision | ms/read | generic: accuracy "
             "| answered | precision | ms/read |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    runs: dict[int, list[tuple[float, Measured, Measured]]] = {size: [] for size in args.sizes}
    with httpx.Client(base_url=url, timeout=120) as client:
        if args.traffic:
            lines = traffic(client, folders, args.traffic, settings.learn_scan_interval_s, args.fallback)
        for folder in [] if args.traffic else names:
            generic = read_folder(client, folders, folder, None)
            for size in args.sizes:
                measured, status = learn(client, folders, folder, size)
                minutes = (status["last_training"] or {}).get("train_seconds", 0) / 60
                runs[size].append((minutes, measured, generic))
                lines.append(f"| {folder} | {size} | {minutes:.1f} | {_cell(measured)} | {_cell(generic)} |")
                print(lines[-1], flush=True)
    for size, rows in runs.items():
        if rows:
            minutes, site, generic = zip(*rows)
            lines.append(f"| mean of the {len(rows)} | {size} | {sum(minutes) / len(rows):.1f} "
                         f"| {_cell(Measured.mean(list(site)))} | {_cell(Measured.mean(list(generic)))} |")
    publish(lines, args.markdown)


if __name__ == "__main__":
    main()
