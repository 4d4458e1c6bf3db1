"""rq-dashboard, started so that it never unpickles and other web pages cannot drive it
(``python -m shared.dashboard``).

rq-dashboard 0.9's ``--json`` reaches only some routes: the job page, the worker list, requeue and delete
still load jobs with RQ's default serializer, pickle, so whoever can write one job hash into Redis runs
code in the dashboard. Here RQ's default serializer is JSON for this whole process, so no route can
unpickle: a pickled job fails to load instead. Its state-changing routes (requeue, delete, empty,
compact) answer a cross-site form POST, and ``/requeue/<queue>`` even a GET (an ``<img>`` tag is enough);
here they need a POST from the dashboard's own pages, and the Host header must be a trusted name, so a
page re-pointing its own name at 127.0.0.1 (DNS rebinding) is refused too. The Redis client is the one
``shared.connection`` makes for every process, so passwords and Sentinel URLs work the same here.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from flask import Flask, abort, request
from redis import Redis
from rq import serializers
from rq_dashboard import web
from rq_dashboard.cli import make_flask_app

from shared.connection import connect
from shared.settings import Settings


def json_only() -> None:
    """Make RQ's default serializer JSON in this process: every job, queue, worker and result the
    dashboard builds without naming a serializer then reads JSON, never pickle."""
    serializers.DefaultSerializer.dumps = staticmethod(serializers.JSONSerializer.dumps)
    serializers.DefaultSerializer.loads = staticmethod(serializers.JSONSerializer.loads)
    web.config.serializer = serializers.JSONSerializer


def use_connection(client: Redis) -> None:
    """Give every dashboard request ``client``: 0.9 otherwise builds its own from the URL per request."""
    web.from_url = lambda *_url, **_options: (None, client)


def same_origin() -> bool:
    """True when the browser says the request comes from a page of this dashboard (Origin, else Referer).
    Browsers send Origin with every POST, so a request without either is not one of our pages'."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    parts = urlsplit(source)
    return f"{parts.scheme}://{parts.netloc}" == f"{request.scheme}://{request.host}"


def guard_writes() -> None:
    """Before each request: a route that can change state (its rule accepts POST) must be a same-origin
    POST: GET gets 405, another origin 403."""
    rule = request.url_rule
    if rule is None or "POST" not in (rule.methods or ()):
        return
    if request.method != "POST":
        abort(405)
    if not same_origin():
        abort(403)


def redacted(url: str) -> str:
    """The URL without its credentials, for the dashboard's instance list."""
    return re.sub(r"//[^@/]*@", "//", url)


def create_app(settings: Settings) -> Flask:
    json_only()
    use_connection(connect(settings))
    app = make_flask_app(config=None, username=None, password=None, url_prefix="")
    app.config["RQ_DASHBOARD_REDIS_URL"] = redacted(settings.effective_redis_url)
    app.config["DEPRECATED_OPTIONS"] = []
    app.config["TRUSTED_HOSTS"] = list(settings.dashboard_trusted_hosts)
    app.before_request(guard_writes)
    web.setup_rq_connection(app)
    return app


def main() -> None:
    settings = Settings()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    create_app(settings).run(host=settings.dashboard_host, port=settings.dashboard_port)


if __name__ == "__main__":
    main()
