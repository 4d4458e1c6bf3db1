"""Run the API with uvicorn on the configured address (``python -m api``)."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, access_log=False)


if __name__ == "__main__":
    main()
