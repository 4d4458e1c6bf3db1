"""Logging set-up shared by the API and the workers: text by default, JSON when ``LOG_FORMAT=json``."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """One handler on the root logger; quiet the libraries whose per-item lines are noise here."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # RQ logs two lines per job at INFO: noise at our rate, and time spent on the request path.
    logging.getLogger("rq.worker").setLevel(logging.WARNING)
    # The API writes its own line per request; uvicorn's access log would repeat it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
