"""Run the API with uvicorn on the configured address (``python -m api``)."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from shared.logs import configure_logging
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, access_log=False, log_config=None,
        loop="uvloop", http="httptools", ssl_certfile=settings.tls_certfile, ssl_keyfile=settings.tls_keyfile,
    )  # fmt: skip


if __name__ == "__main__":
    main()
