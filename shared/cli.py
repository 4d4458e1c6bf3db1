"""The ``captchaocr`` command: read captchas by hand or from scripts, and run the stack.

Exit codes: 0 every image answered; 1 at least one image refused (unreadable, low confidence, not an
image); 2 usage error or missing file; 3 the service could not be reached or is not healthy.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from shared.settings import PROJECT_ROOT, Settings

app = typer.Typer(help="CaptchaOCR: read numeric image captchas.", no_args_is_help=True, add_completion=False)

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def _read_in_process(paths: list[Path], digits: int | None, min_confidence: float | None) -> list[dict]:
    from worker.answering import Answerer  # loads ONNX Runtime: only for in-process reading
    from shared.contract import OcrJob

    answerer = Answerer(Settings())
    jobs = (OcrJob(image_base64=_b64(p), digits=digits, min_confidence=min_confidence) for p in paths)
    return [answerer.answer_job(job).model_dump(mode="json") for job in jobs]


def _read_over_http(paths: list[Path], url: str, digits: int | None, min_confidence: float | None) -> list[dict]:
    results = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for path in paths:
            body = {"image_base64": _b64(path), "digits": digits, "min_confidence": min_confidence}
            try:
                response = client.post("/ocr", json=body)
            except httpx.HTTPError as error:
                typer.echo(f"error: cannot reach CaptchaOCR at {url}: {error}", err=True)
                raise typer.Exit(EXIT_UNREACHABLE) from error
            answer = response.json()
            if response.status_code == 200:
                results.append({"ok": True, **answer})
            elif response.status_code == 422 and "error" in answer:
                results.append({"ok": False, **answer})
            else:
                typer.echo(f"error: {url} answered {response.status_code}: {answer.get('detail')}", err=True)
                raise typer.Exit(EXIT_UNREACHABLE)
    return results


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@app.command()
def solve(
    images: Annotated[list[Path], typer.Argument(help="Image files to read.")],
    url: Annotated[str | None, typer.Option(help="Use a running service (e.g. http://127.0.0.1:8000).")] = None,
    digits: Annotated[int | None, typer.Option(min=1, max=8, help="Digits per captcha (default 4).")] = None,
    min_confidence: Annotated[float | None, typer.Option(min=0, max=1, help="Refuse less probable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image, for scripts.")] = False,
) -> None:
    """Read captcha images: in this process (no server needed), or through a running service with --url."""
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        typer.echo(f"error: no such file: {', '.join(missing)}", err=True)
        raise typer.Exit(EXIT_USAGE)
    if url:
        results = _read_over_http(images, url, digits, min_confidence)
    else:
        results = _read_in_process(images, digits, min_confidence)
    for path, result in zip(images, results, strict=True):
        typer.echo(json.dumps({"file": str(path), **result}) if as_json else _line(path, result, len(images)))
    if not all(result["ok"] for result in results):
        raise typer.Exit(EXIT_REFUSED)


def _line(path: Path, result: dict[str, Any], count: int) -> str:
    text = result["text"] if result["ok"] else f"refused: {result['detail']}"
    return f"{path}: {text}" if count > 1 else text


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context, folder: Annotated[Path, typer.Argument(help="Labeled images, or folders.")]) -> None:
    """Accuracy benchmark over <index>_<label>.png files (options: see bench/accuracy.py --help)."""
    if not (PROJECT_ROOT / "bench" / "accuracy.py").is_file():  # benches are not installed with the package
        typer.echo(f"error: `captchaocr bench` runs bench/accuracy.py from a source checkout of CaptchaOCR; "
                   f"{PROJECT_ROOT} is an installed copy without bench/: run the checkout's own "
                   f".venv/bin/captchaocr", err=True)  # fmt: skip
        raise typer.Exit(EXIT_USAGE)
    command = [sys.executable, "-m", "bench.accuracy", str(folder.resolve()), *ctx.args]
    raise typer.Exit(subprocess.call(command, cwd=PROJECT_ROOT))


LEARN_BATCH = 100  # samples per upload request (the API takes up to 256)
ApiKey = Annotated[str | None, typer.Option(envvar="CAPTCHAOCR_API_KEY", help="Key, when the API needs one.")]
ServiceUrl = Annotated[str | None, typer.Option(help="The service (default: the configured host and port).")]


def _service(url: str | None, api_key: str | None) -> httpx.Client:
    settings = Settings()
    base = url or f"http://{settings.host}:{settings.port}"
    return httpx.Client(base_url=base, timeout=60, headers={"X-API-Key": api_key} if api_key else {})


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        typer.echo(f"error: cannot reach CaptchaOCR at {client.base_url}: {error}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from error
    if response.status_code >= 400:
        typer.echo(f"error: {path} answered {response.status_code}: {response.text}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE if response.status_code >= 500 else EXIT_USAGE)
    return response


@app.command()
def learn(
    site: Annotated[str, typer.Argument(help="The site these captchas come from, e.g. shop.example.")],
    folder: Annotated[Path, typer.Argument(help="Labelled captchas named <index>_<label>.png.")],
    train: Annotated[bool, typer.Option(help="Ask the trainer to train the site once uploaded.")] = True,
    url: ServiceUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Upload a folder of labelled captchas as samples of SITE (then the trainer learns its style)."""
    paths = sorted(p for p in folder.glob("*_*.*") if p.is_file())
    if not paths:
        typer.echo(f"error: no <index>_<label> image files in {folder}", err=True)
        raise typer.Exit(EXIT_USAGE)
    added = refused = 0
    with _service(url, api_key) as client, typer.progressbar(length=len(paths), label=f"uploading to {site}") as bar:
        for start in range(0, len(paths), LEARN_BATCH):
            chunk = paths[start:start + LEARN_BATCH]
            items = [{"image_base64": _b64(p), "text": p.stem.split("_", 1)[1]} for p in chunk]
            body = _call(client, "POST", f"/sites/{site}/samples", json={"items": items}).json()
            added, refused = added + body["added"], refused + len(body["refused"])
            bar.update(len(chunk))
        typer.echo(f"{added} samples added, {refused} refused; {site} holds {body['samples']}")
        if train:
            _call(client, "POST", f"/sites/{site}/train")
            typer.echo(f"training queued: see `captchaocr sites` or GET /sites/{site}")


@app.command()
def sites(url: ServiceUrl = None, api_key: ApiKey = None) -> None:
    """Each site: samples, training state, and its model's figures on held-back samples."""
    with _service(url, api_key) as client:
        known = _call(client, "GET", "/sites").json()
    for status in known:
        model = status["model"]
        figures = (f"model v{model['version']}: accuracy {model['validation']['accuracy']:.3f} "
                   f"(generic {model['generic_validation']['accuracy']:.3f})") if model else "no model"
        typer.echo(f"{status['site']}: {status['samples']} samples, {status['training']}, {figures}")


@app.command()
def up() -> None:
    """Start the stack under PM2 (same as scripts/up.sh)."""
    raise typer.Exit(subprocess.call([str(PROJECT_ROOT / "scripts" / "up.sh")]))


@app.command()
def down() -> None:
    """Stop the stack (same as scripts/down.sh)."""
    raise typer.Exit(subprocess.call([str(PROJECT_ROOT / "scripts" / "down.sh")]))


@app.command()
def status() -> None:
    """Show the API's health: Redis, workers and queue depth."""
    settings = Settings()
    url = f"http://{settings.host}:{settings.port}/"
    try:
        health = httpx.get(url, timeout=5).json()
    except httpx.HTTPError as error:
        typer.echo(f"API     down ({url}: {error})")
        raise typer.Exit(EXIT_UNREACHABLE) from error
    typer.echo(f"API     up ({url})")
    typer.echo(f"Redis   {'up' if health['redis'] else 'down'} ({settings.effective_redis_url.split('@')[-1]})")
    typer.echo(f"Workers {health['workers']}")
    typer.echo(f"Queue   {health.get('queue_depth')} waiting")
    if health["status"] != "ok":
        raise typer.Exit(EXIT_UNREACHABLE)


if __name__ == "__main__":
    app()
