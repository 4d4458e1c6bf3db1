"""Each solver client from PyPI, unmodified, run in a process of its own as a crawler runs it: pointed at
the service and made to trust its certificate through the environment only (REQUESTS_CA_BUNDLE,
SSL_CERT_FILE, CAPSOLVER_API_BASE are read when the clients and aiohttp are imported).

``python -m tests.protocol_clients <client> <call> <json args>`` prints ``{"value": ...}`` or
``{"error": <the client's exception class>, "message": ...}``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any


def two_captcha(call: str, args: dict[str, Any]) -> Any:
    from twocaptcha import TwoCaptcha

    key, server = os.environ["CLIENT_KEY"], os.environ["SERVER"]
    solver = TwoCaptcha(key, server=server, pollingInterval=1, defaultTimeout=60)
    if call == "normal":
        return solver.normal(args.pop("file"), **args)
    if call == "report":
        return solver.report(args["id"], args["correct"])
    return solver.balance()


def capmonster(call: str, args: dict[str, Any]) -> Any:
    from capmonstercloudclient import CapMonsterClient, ClientOptions
    from capmonstercloudclient.requests import ImageToTextRequest

    options = ClientOptions(api_key=os.environ["CLIENT_KEY"], service_url=os.environ["SERVER"])
    client = CapMonsterClient(options)
    if call == "solve":
        image = base64.b64decode(args.pop("image"))
        return asyncio.run(client.solve_captcha(ImageToTextRequest(image_bytes=image, **args)))
    return asyncio.run(client.get_balance())


def capsolver(call: str, args: dict[str, Any]) -> Any:
    import capsolver as client

    if call == "solve":
        return client.solve({"type": "ImageToTextTask", **args})
    return client.balance()


CLIENTS = {"2captcha": two_captcha, "capmonster": capmonster, "capsolver": capsolver}


def main() -> None:
    client, call, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    try:
        print(json.dumps({"value": CLIENTS[client](call, args)}))
    except Exception as exc:  # noqa: BLE001 - the test reads which error the client raised
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))


if __name__ == "__main__":
    main()
