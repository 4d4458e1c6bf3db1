"""Optional API keys (``CAPTCHAOCR_API_KEYS``): when set, every route but the health check needs one."""

from __future__ import annotations

import hmac

from fastapi import Depends, Header, HTTPException, status

from api.dependencies import ServicesDep
from shared.settings import Settings


def key_is_accepted(settings: Settings, given: str | None) -> bool:
    """Any key when none is configured, else only a configured one, compared in constant time."""
    if not settings.api_keys:
        return True
    candidate = (given or "").encode()
    # A list, not a generator: every key is compared, so timing does not tell which one nearly matched.
    return any([hmac.compare_digest(candidate, key.encode()) for key in settings.api_keys])


async def require_api_key(
    services: ServicesDep,
    authorization: str | None = Header(None, include_in_schema=False),
    x_api_key: str | None = Header(None, include_in_schema=False),
) -> None:
    """Accept ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; 401 otherwise."""
    bearer = authorization[7:] if authorization and authorization[:7].lower() == "bearer " else None
    if not key_is_accepted(services.settings, x_api_key if x_api_key is not None else bearer):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or unknown API key", headers={"WWW-Authenticate": "Bearer"}
        )


RequireApiKey = Depends(require_api_key)
